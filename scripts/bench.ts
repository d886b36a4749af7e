#!/usr/bin/env node
/**
 * `npm run bench`: measures what users feel and writes a table plus bench/results.json.
 * Every figure is a median, and where a baseline exists it runs in the same process tree on the
 * same bytes, alternating with ours, because this machine is shared and noisy. See
 * docs/PERFORMANCE.md for the figures and their meaning.
 *
 *   npm run bench -- [--size-mib 512] [--runs 3] [--only build,install,memory,checkin,wire] ...
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agentEntry, benchBlockdev } from './bench/blockdev.js';
import { benchBuild } from './bench/build.js';
import { benchEngines } from './bench/engines.js';
import { benchCheckin, profileCheckin } from './bench/checkin.js';
import { benchCheckinMetrics } from './bench/checkin-metrics.js';
import { BenchServer } from './bench/fixture.js';
import { benchInstall } from './bench/install.js';
import { canUseLoops } from './bench/loopdev.js';
import { describeMachine } from './bench/machine.js';
import { benchMemory, PATHS } from './bench/memory.js';
import { benchStart } from './bench/start.js';
import { formatSummary, summarizeDir } from './bench/profile.js';
import { ROOT, dropCaches, randomFile, type BenchRow } from './bench/util.js';
import { benchWire } from './bench/wire.js';
import { benchDelta, benchDeltaApply } from './bench/delta-rows.js';

const BENCHES = ['build', 'install', 'blockdev', 'memory', 'checkin', 'wire', 'delta', 'engines', 'start'];
const USAGE = `Usage: npm run bench -- [options]

Runs the benchmarks, prints a table and writes bench/results.json (see docs/PERFORMANCE.md).

Options:
  --only LIST          some of ${BENCHES.join(',')} (default: all; blockdev needs root)
  --runs N             runs per measurement; medians are reported (default 3)
  --size-mib N         image size of the build and install benchmarks (default 512)
  --memory-mib LIST    image sizes of the memory benchmark (default 128,1024)
  --memory-paths LIST  install paths of the memory benchmark: raw,url,gzip,archive,module (default: all)
  --start-mib N        image size of the start-up benchmark (default 16)
  --devices N          enrolled devices of the check-in benchmark (default 1000)
  --rate N             check-ins per second offered in the latency run (default 2000)
  --concurrency N      check-ins in flight in the throughput run (default 32)
  --checkin-seconds N  measured seconds per check-in run, after 2 s of warm-up (default 10)
  --wire-os-mib N      system size of the wire benchmark (default 64)
  --wire-module-mib N  module size of the wire benchmark (default 5)
  --profile-dir DIR    keep the CPU profiles of missed goals in DIR (default: summarized, then deleted)
  --dir DIR            scratch directory (default $OTA_BENCH_DIR or the system temp directory)
`;

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '512' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string', default: BENCHES.join(',') },
    'memory-mib': { type: 'string', default: '128,1024' },
    'start-mib': { type: 'string', default: '16' },
    'memory-paths': { type: 'string' },
    devices: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '32' },
    'checkin-seconds': { type: 'string', default: '10' },
    'wire-os-mib': { type: 'string', default: '64' },
    'wire-module-mib': { type: 'string', default: '5' },
    'profile-dir': { type: 'string' },
    dir: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

/** A positive integer option, or exit 2 naming it. */
function count(name: keyof typeof values): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`bench: --${name} must be a positive integer, not "${String(values[name])}"\n`);
    process.exit(2);
  }
  return n;
}
const mib = count('size-mib');
const runs = count('runs');
const only = new Set(values.only.split(',').filter(Boolean));
for (const b of only) {
  if (!BENCHES.includes(b)) {
    process.stderr.write(`bench: --only: unknown benchmark "${b}"; choose from ${BENCHES.join(', ')}\n`);
    process.exit(2);
  }
}
const memorySizes = values['memory-mib'].split(',').map(Number);
if (memorySizes.some((n) => !Number.isInteger(n) || n <= 0)) {
  process.stderr.write(`bench: --memory-mib must list positive integers, not "${values['memory-mib']}"\n`);
  process.exit(2);
}

const pathKeys = values['memory-paths']?.split(',');
if (pathKeys?.some((k) => !PATHS.some((p) => p.key === k))) {
  process.stderr.write(`bench: --memory-paths must list some of ${PATHS.map((p) => p.key).join(',')}, not "${values['memory-paths']}"\n`);
  process.exit(2);
}
const memoryPaths = pathKeys ? PATHS.filter((p) => pathKeys.includes(p.key)) : PATHS;

const say = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
const base = values.dir ?? process.env.OTA_BENCH_DIR ?? tmpdir();
const work = await mkdtemp(join(base, 'otaab-bench-'));
const machine = await describeMachine(work);
const cacheDropped = await dropCaches();
if (!cacheDropped) say('cannot drop the page cache (needs root): reads may come from memory');
const profileRoot = values['profile-dir'] ?? join(work, 'profiles');
const rows: BenchRow[] = [];
const details: Record<string, unknown> = {};
const profiles: Record<string, string> = {};
const started = Date.now();
try {
  if (only.has('build') || only.has('install') || only.has('blockdev')) {
    say(`writing a ${mib} MiB random image`);
    await randomFile(join(work, 'image.bin'), mib);
  }
  if (only.has('build')) {
    say('benchmark 3: ota-release build against sha256sum + tar');
    rows.push(...(await benchBuild(work, join(work, 'image.bin'), mib, runs)));
  }
  if (only.has('install') || only.has('blockdev') || only.has('memory') || only.has('wire') || only.has('start')) {
    const srv = await BenchServer.start(join(work, 'server'));
    // The agent the block-device and memory benchmarks run: the one-file bundle, made afresh.
    const cli = only.has('blockdev') || only.has('memory') || only.has('start') ? await agentEntry(ROOT) : '';
    try {
      if (only.has('blockdev')) {
        if (await canUseLoops()) {
          say(`benchmark 6: ota-agent install FILE of ${mib} MiB into a loop device, against RAUC, Mender and dd, ${runs} runs each`);
          const dir = join(profileRoot, 'blockdev');
          await rm(dir, { recursive: true, force: true });
          const r = await benchBlockdev(srv, join(work, 'image.bin'), mib, runs, cli, dir);
          for (const s of r.skipped) say(`benchmark 6: ${s} is not installed: not run`);
          rows.push(...r.rows);
          details.blockdev = { runs: r.runs, skipped: r.skipped };
          if (r.profile) profiles.blockdev = r.profile;
        } else say('benchmark 6 skipped: loop devices need root and losetup');
      }
      if (only.has('install')) {
        say(`benchmark 1: ota-agent install of ${mib} MiB against curl | tee >(openssl dgst -sha256), ${runs} runs each`);
        const dir = join(profileRoot, 'install');
        await rm(dir, { recursive: true, force: true });
        const r = await benchInstall(srv, join(work, 'image.bin'), mib, runs, dir);
        rows.push(...r.rows);
        details.install = { runs: r.runs, baselineSeconds: r.baselineSeconds };
        if (r.profile) profiles.install = r.profile;
        await rm(join(work, 'image.bin'), { force: true });
      }
      if (only.has('memory')) {
        say(`benchmark 2: agent memory on every install path, at ${memorySizes.join(' and ')} MiB`);
        rows.push(...(await benchMemory(srv, memorySizes, runs, cli, memoryPaths)));
      }
      if (only.has('start')) {
        say(`benchmark 7: ota-agent install FILE, process start to the first payload byte, against a bare node, ${runs} runs each`);
        const r = await benchStart(srv, count('start-mib'), runs, cli);
        rows.push(...r.rows);
        details.start = r.runs;
      }
      if (only.has('wire')) {
        say('benchmark 5: bytes on the wire, module-only against the full root file system');
        rows.push(...(await benchWire(srv, count('wire-os-mib'), count('wire-module-mib'))));
      }
    } finally {
      await srv.stop();
    }
  }
  if (only.has('checkin')) {
    const o = { devices: count('devices'), rate: count('rate'), concurrency: count('concurrency'), seconds: count('checkin-seconds'), runs, p99GoalMs: 50 };
    say(`benchmark 4: check-ins of ${o.devices} devices (closed loop of ${o.concurrency}, open loop at ${o.rate}/s), ${runs} runs of ${o.seconds} s`);
    const dir = join(profileRoot, 'checkin');
    await rm(dir, { recursive: true, force: true });
    const r = await benchCheckin(join(work, 'checkin'), o);
    if (r.rows.some((x) => x.met === false)) {
      // Profile only when a goal was missed: the profiled run measures nothing itself.
      say('benchmark 4 missed its goal: profiling the server under the closed loop');
      await profileCheckin(join(work, 'checkin-profile'), o, dir);
      profiles.checkin = `ota-server under the closed-loop check-in load (start-up and ${o.devices} enrollments included), --cpu-prof:\n${formatSummary(await summarizeDir(dir))}`;
    }
    rows.push(...r.rows);
    details.checkin = { closed: r.closed, open: r.open };
    say('benchmark 4b: the same check-in load against a server with --metrics off');
    const off = await benchCheckinMetrics(join(work, 'checkin-metrics-off'), o, r);
    rows.push(...off.rows);
    details.checkinMetricsOff = { closed: off.closed, open: off.open };
  }
  if (only.has('engines')) {
    // Same devices and loops on SQLite, PostgreSQL, and two instances on PostgreSQL (docs/DEPLOYMENT.md).
    const o = { devices: Math.min(count('devices'), 500), concurrency: count('concurrency'), rate: 300, seconds: count('checkin-seconds') };
    say(`benchmark 4c: check-ins on SQLite and PostgreSQL (1 and 2 instances), ${o.devices} devices, open loop at ${o.rate}/s`);
    rows.push(...(await benchEngines(join(work, 'engines'), o)));
  }
  if (only.has('delta')) {
    say(`benchmark 6: delta wire bytes against casync, ${mib} MiB images (scripts/bench/delta.ts)`);
    rows.push(...(await benchDelta(work, mib)));
    say(`benchmark 6: delta apply time and memory against a full install, ${mib} MiB (scripts/bench/delta-apply.ts)`);
    rows.push(...(await benchDeltaApply(work, mib, runs)));
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

machine.load.end = loadavg()[0] ?? 0;
// A run without answers has no latencies (null in the load's JSON): a dash, not a crash.
const cell = (n: number | null | undefined, unit: string): string => (n === undefined || n === null || Number.isNaN(n) ? '-' : `${n >= 100 ? n.toFixed(0) : n.toFixed(n >= 10 ? 1 : 2)} ${unit}`);
// A pipe inside a cell (curl|tee) would end the cell in Markdown.
const md = (text: string): string => text.replaceAll('|', '\\|');
const table = [
  '| benchmark | ours | baseline | ratio | goal | note |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${md(r.metric)} | ${cell(r.ours, r.unit)} | ${cell(r.baseline, r.unit)} | ${r.ratio?.toFixed(2) ?? '-'} | ${md(r.goal ?? '-')}${r.met === undefined ? '' : r.met ? ' (met)' : ' (missed)'} | ${md(r.note ?? '')} |`),
].join('\n');
process.stdout.write(`${table}\n`);
for (const [name, text] of Object.entries(profiles)) process.stdout.write(`\nprofile (${name}): ${text}\n`);
process.stdout.write(
  `\nmachine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, disk ${machine.disk}, Node ${machine.node}, Linux ${machine.kernel}; ` +
    `load average ${machine.load.start.toFixed(2)} at start, ${machine.load.end.toFixed(2)} at end; ` +
    `4 KiB write+fdatasync p50 ${machine.fdatasyncMs.p50.toFixed(2)} ms, p99 ${machine.fdatasyncMs.p99.toFixed(2)} ms; page cache ${cacheDropped ? 'dropped before each run' : 'NOT dropped (not root)'}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
);
await mkdir(join(ROOT, 'bench'), { recursive: true });
const options = { mib, runs, only: [...only], memoryMib: memorySizes, devices: values.devices, rate: values.rate, concurrency: values.concurrency, checkinSeconds: values['checkin-seconds'], wireOsMib: values['wire-os-mib'], wireModuleMib: values['wire-module-mib'] };
await writeFile(join(ROOT, 'bench', 'results.json'), `${JSON.stringify({ date: new Date().toISOString(), machine: { ...machine, cacheDropped }, options, rows, profiles, details }, null, 2)}\n`);
process.stdout.write('written bench/results.json\n');
