#!/usr/bin/env node
/**
 * `npm run bench`: measures what users feel and writes a table plus bench/results.json.
 * Every figure is a ratio against a baseline run in the same process tree on the same bytes,
 * because these machines are noisy. See docs/PERFORMANCE.md for the figures and their meaning.
 *
 *   npm run bench -- [--size-mib 512] [--runs 3] [--only build,install,memory,checkin,wire]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchBuild } from './bench/build.js';
import { ROOT, dropCaches, randomFile, type BenchRow } from './bench/util.js';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '512' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write('Usage: npm run bench -- [--size-mib 512] [--runs 3] [--only build,...]\n');
  process.exit(0);
}
const mib = Number(values['size-mib']);
const runs = Number(values.runs);
const only = new Set((values.only ?? 'build').split(','));

const work = await mkdtemp(join(process.env.OTA_BENCH_DIR ?? tmpdir(), 'otaab-bench-'));
const rows: BenchRow[] = [];
try {
  const image = join(work, 'image.bin');
  await randomFile(image, mib);
  if (only.has('build')) rows.push(...(await benchBuild(work, image, mib, runs)));
} finally {
  await rm(work, { recursive: true, force: true });
}

const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, cacheDropped: await dropCaches() };
const table = [
  '| benchmark | ours | baseline | ratio | goal | note |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.metric} | ${r.ours.toFixed(1)} ${r.unit} | ${r.baseline?.toFixed(1) ?? '-'} ${r.baseline !== undefined ? r.unit : ''} | ${r.ratio?.toFixed(2) ?? '-'} | ${r.goal ?? '-'}${r.met === undefined ? '' : r.met ? ' (met)' : ' (missed)'} | ${r.note ?? ''} |`),
].join('\n');
process.stdout.write(`${table}\n`);
await mkdir(join(ROOT, 'bench'), { recursive: true });
await writeFile(join(ROOT, 'bench', 'results.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, options: { mib, runs, only: [...only] }, rows }, null, 2)}\n`);
process.stdout.write('written bench/results.json\n');
