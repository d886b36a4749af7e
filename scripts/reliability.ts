#!/usr/bin/env node
/**
 * `npm run test:reliability`: the evidence behind "an update never bricks a device and never
 * loses data" (issue 7), as figures. Four parts, each against real processes on loopback:
 *   hostile   hostile HTTP requests and the bundle corpus through upload and install
 *   powercut  a power cut after every durable write of four update scenarios, invariants checked
 *   network   bundle downloads through a fault proxy (drops, stalls, slow links, 5xx, restarts)
 *   load      thousands of enrolled devices checking in and reporting while a release uploads
 * Prints a table and, on a full run, merges it into the generated section of docs/RELIABILITY.md.
 * Exits 0 when every point held, 1 when one did not, 2 on a usage mistake.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runHostile } from './reliability/hostile.js';
import { runLoad } from './reliability/load.js';
import { runNetwork } from './reliability/network.js';
import { runPowercut } from './reliability/powercut.js';
import { PARTS, renderTable, renderText, rowHeld, writeDoc, type Part, type Row } from './reliability/results.js';
import { ROOT } from './reliability/world.js';

const USAGE = `Usage: npm run test:reliability -- [--fast] [--only PART|PART:SCENARIO,...] [--jobs N] [--write-doc | --no-doc]

Runs the reliability suite (docs/RELIABILITY.md) and prints its table.

Options:
  --fast         the CI subset: every hostile input, a stride of the power-cut points
                 (one scenario in full), short network runs, a smaller load
  --only LIST    parts (${PARTS.join(', ')}) or single rows (e.g. powercut:server-update),
                 comma-separated
  --jobs N       power-cut points run in parallel (default 2: grub-emu and node per point)
  --write-doc    merge the rows into docs/RELIABILITY.md (the default without --fast)
  --no-doc       do not touch docs/RELIABILITY.md
  -h, --help     this text

Examples:
  npm run test:reliability                         # everything, every point; writes the doc
  npm run test:reliability -- --fast               # what CI runs
  npm run test:reliability -- --only powercut:server-rollback`;

/** A part of the suite: runs the rows `want` selects. */
type Runner = (o: { want: (id: string) => boolean; fast: boolean; jobs: number; log: (l: string) => void }) => Promise<Row[]>;

const RUNNERS: Record<Part, Runner | undefined> = {
  hostile: (o) => runHostile({ want: o.want, log: o.log, mode: o.fast ? 'fast' : 'full' }),
  powercut: (o) => runPowercut(o),
  network: (o) => runNetwork(o),
  load: (o) => runLoad(o),
};

function usage(message: string): never {
  process.stderr.write(`reliability: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      fast: { type: 'boolean' },
      only: { type: 'string' },
      jobs: { type: 'string' },
      'write-doc': { type: 'boolean' },
      'no-doc': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
} catch (err) {
  usage(err instanceof Error ? err.message : String(err));
}
const v = args.values;
if (v.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const fast = v.fast === true;
const jobs = v.jobs === undefined ? 2 : Number(v.jobs);
if (!Number.isInteger(jobs) || jobs < 1 || jobs > 16) usage(`--jobs ${v.jobs}: give a whole number from 1 to 16`);
if (v['write-doc'] && v['no-doc']) usage('--write-doc and --no-doc contradict each other: give one');
const selectors = (v.only ?? '').split(',').map((s) => s.trim()).filter(Boolean);
for (const s of selectors) {
  const part = s.split(':')[0] as Part;
  if (!PARTS.includes(part)) usage(`--only ${s}: unknown part "${part}"; the parts are ${PARTS.join(', ')}`);
}
const want = (id: string): boolean => selectors.length === 0 || selectors.some((s) => s === id || s === id.split(':')[0]);
const wantPart = (p: Part): boolean => selectors.length === 0 || selectors.some((s) => s.split(':')[0] === p);
const writeIt = v['write-doc'] === true || (!fast && v['no-doc'] !== true);

const started = Date.now();
const log = (line: string): void => void process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
const rows: Row[] = [];
let crashed = false;
for (const part of PARTS) {
  if (!wantPart(part)) continue;
  const run = RUNNERS[part];
  if (!run) {
    log(`${part}: not available in this build`);
    crashed = true;
    continue;
  }
  log(`${part}: starting${fast ? ' (fast)' : ''}`);
  try {
    const got = await run({ want, fast, jobs, log });
    rows.push(...got);
    process.stdout.write(`${renderText(got)}\n`);
  } catch (err) {
    crashed = true;
    log(`${part}: the harness failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
}
process.stdout.write(`\n${renderTable(rows)}\n\n`);
const failed = rows.filter((r) => !rowHeld(r));
if (writeIt && rows.length) {
  const doc = join(ROOT, 'docs', 'RELIABILITY.md');
  await writeDoc(doc, rows);
  log(`wrote ${rows.length} row(s) into ${doc}`);
}
log(`${rows.length} row(s), ${failed.length} with points that did not hold${crashed ? ', and a part that could not run' : ''}; ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exitCode = failed.length || crashed ? 1 : 0;
