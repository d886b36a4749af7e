#!/usr/bin/env node
/** Writes the hostile-bundle corpus into a directory: `node dist/scripts/corpus/cli.js DIR`. */
import { makeCorpus } from './corpus.js';

const dir = process.argv[2];
if (!dir || dir === '--help' || dir === '-h') {
  process.stdout.write('Usage: node dist/scripts/corpus/cli.js DIR\n\nWrites hostile bundles, the keys to verify them with and corpus.json (each case with the error code it must be refused with).\n');
  process.exitCode = dir ? 0 : 2;
} else {
  const corpus = await makeCorpus(dir);
  for (const c of corpus.cases) process.stdout.write(`${c.expect.padEnd(28)} ${c.name}: ${c.description}\n`);
  process.stdout.write(`${corpus.cases.length} cases, ${new Set(corpus.cases.map((c) => c.expect)).size} distinct codes, in ${dir}\n`);
}
