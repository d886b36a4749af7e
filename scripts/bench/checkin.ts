/**
 * Benchmark 4: server check-ins. A fresh `ota-server` enrolls 1,000 devices; the load generator
 * (scripts/fleet/load.ts, in its own process) then checks them in with fresh nonces over
 * keep-alive connections: a closed loop for the most signed answers per second, and an open
 * loop at the goal rate for the latency devices see (counted from each check-in's scheduled
 * start). Server and load generator share this machine's cores. A sample of answers is
 * verified with shared/protocol verifyAnswer; signing one answer is also timed on its own.
 */
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPrivateKey } from '../../shared/signing.js';
import { signAnswer, newNonce } from '../../shared/protocol.js';
import { enrollDevices, type CheckinLoadStats } from '../fleet/load.js';
import { SERVER_CLI } from '../fleet/server.js';
import { BenchServer } from './fixture.js';
import { metricsMicrosPerCheckin } from './metrics-cost.js';
import { ROOT, cliPath, median, type BenchRow } from './util.js';

const LOAD_CLI = join(ROOT, 'dist', 'scripts', 'fleet', 'load.js');

/** Options of benchmark 4. */
export interface CheckinBenchOptions {
  devices: number;
  /** Open-loop rate for the latency run, per second. */
  rate: number;
  /** Closed-loop check-ins in flight for the throughput run. */
  concurrency: number;
  /** Measured seconds per run (after a warm-up). */
  seconds: number;
  runs: number;
  /** p99 latency goal, ms. */
  p99GoalMs: number;
  /** Extra `ota-server start` flags (the metrics comparison runs with `--metrics off`). */
  serverArgs?: string[];
}

/** Runs the load generator CLI against `url` and returns its stats. */
async function load(url: string, devicesFile: string, mode: string[], seconds: number): Promise<CheckinLoadStats> {
  const r = await execa('node', [LOAD_CLI, 'run', '--url', url, '--devices', devicesFile, ...mode, '--seconds', String(seconds), '--warmup-seconds', '2', '--verify-every', '250', '--json']);
  return JSON.parse(String(r.stdout)) as CheckinLoadStats;
}

/** Microseconds to sign one check-in answer with the server's key (native Ed25519 path), median of 2,000. */
async function signMicros(data: string): Promise<number> {
  const key = await loadPrivateKey(join(data, 'server-key.asc'));
  const times: number[] = [];
  for (let i = 0; i < 2200; i++) {
    const now = new Date();
    const answer = { device: `load-${i}`, nonce: newNonce(), issued: now.toISOString(), expires: new Date(now.getTime() + 300_000).toISOString(), directive: { type: 'none' as const }, pollInterval: 300 };
    const t = process.hrtime.bigint();
    await signAnswer(answer, key);
    if (i >= 200) times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return median(times);
}

function describe(s: CheckinLoadStats): string {
  const l = s.latencyMs;
  // No answer at all (every request failed or timed out): the load stats hold no latencies.
  if (s.answered === 0 || typeof l.p50 !== 'number') return `no answers; statuses ${JSON.stringify(s.statuses)}`;
  const bad = Object.entries(s.statuses).filter(([k]) => k !== '200');
  return `p50 ${l.p50.toFixed(1)} / p90 ${l.p90.toFixed(1)} / p99 ${l.p99.toFixed(1)} ms; ${s.answered} answers${bad.length ? `, non-200: ${JSON.stringify(Object.fromEntries(bad))}` : ''}; ${s.verified.checked} verified, ${s.verified.failed} bad`;
}

/** Runs benchmark 4 in `work`. */
export async function benchCheckin(work: string, o: CheckinBenchOptions): Promise<{ rows: BenchRow[]; closed: CheckinLoadStats[]; open: CheckinLoadStats[] }> {
  const srv = await BenchServer.start(work, o.serverArgs);
  const closed: CheckinLoadStats[] = [];
  const open: CheckinLoadStats[] = [];
  let signUs: number;
  const devicesFile = join(work, 'devices.json');
  try {
    const fleet = await enrollDevices({ url: srv.url, enrollToken: srv.enrollToken, count: o.devices });
    await writeFile(devicesFile, JSON.stringify(fleet));
    for (let i = 0; i < o.runs; i++) {
      closed.push(await load(srv.url, devicesFile, ['--concurrency', String(o.concurrency)], o.seconds));
      open.push(await load(srv.url, devicesFile, ['--rate', String(o.rate)], o.seconds));
    }
    signUs = await signMicros(join(work, 'server-data'));
  } finally {
    await srv.stop();
  }

  const byRate = [...closed].sort((a, b) => a.perSecond - b.perSecond);
  const c = byRate[Math.floor(byRate.length / 2)]!;
  const byP99 = [...open].sort((a, b) => a.latencyMs.p99 - b.latencyMs.p99);
  const p = byP99[Math.floor(byP99.length / 2)]!;
  // Served: (nearly) the offered rate answered, and nothing failed, timed out or never started.
  const served = p.perSecond >= o.rate * 0.98 && Object.keys(p.statuses).every((k) => k === '200');
  return {
    closed,
    open,
    rows: [
      {
        bench: 'checkin',
        metric: `signed check-in answers/s, ${o.devices} devices, ${o.concurrency} in flight (closed loop)`,
        ours: c.perSecond,
        unit: '/s',
        goal: `≥ ${o.rate}`,
        met: c.perSecond >= o.rate,
        note: `median of ${o.runs} runs of ${o.seconds} s: ${describe(c)}`,
      },
      {
        bench: 'checkin',
        metric: `check-in p99 latency at ${o.rate}/s offered (open loop), ${o.devices} devices`,
        ours: p.latencyMs.p99,
        unit: 'ms',
        goal: `< ${o.p99GoalMs}, all ${o.rate}/s served`,
        met: p.latencyMs.p99 < o.p99GoalMs && served,
        note: `median of ${o.runs}: ${p.perSecond.toFixed(0)}/s answered; ${describe(p)}; latency from the scheduled start`,
      },
      {
        bench: 'checkin',
        metric: 'Prometheus metrics work of one check-in (counter, request and 6 store histograms)',
        ours: metricsMicrosPerCheckin(),
        unit: 'µs',
        note: `in-process, median of 7 batches of 20,000; a check-in at ${c.perSecond.toFixed(0)}/s takes ${(1e6 / c.perSecond).toFixed(0)} µs of the server's time`,
      },
      {
        bench: 'checkin',
        metric: 'signing one check-in answer (native Ed25519 OpenPGP)',
        ours: signUs,
        unit: 'µs',
        note: `median of 2,000 in-process signAnswer calls: ${(1e6 / signUs).toFixed(0)}/s on one core`,
      },
    ],
  };
}

/**
 * Runs the closed loop once against a server started with `node --cpu-prof` (ServerProcess
 * takes no node flags) on a fresh data directory in `work`; the profile (start-up and
 * enrollment included) is written into `dir` when the server exits on SIGTERM. Its figures are
 * not reported: a profiled server is slower.
 */
export async function profileCheckin(work: string, o: CheckinBenchOptions, dir: string): Promise<void> {
  const data = join(work, 'profiled-data');
  await mkdir(work, { recursive: true });
  await execa('node', [cliPath('release'), 'keygen', '--out', join(work, 'release')]);
  await execa('node', [SERVER_CLI, 'init', '--data', data]);
  const child = execa('node', ['--cpu-prof', '--cpu-prof-dir', dir, SERVER_CLI, 'start', '--data', data, '--host', '127.0.0.1', '--port', '0', '--release-key', join(work, 'release.pub'), '--log-level', 'warn'], { all: true, buffer: false, reject: false });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.all?.setEncoding('utf8');
      child.all?.on('data', (d: string) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      void child.then(() => reject(new Error(`profiled ota-server exited before listening:\n${out}`)));
    });
    const enroll = String((await execa('node', [SERVER_CLI, 'token', 'create', '--role', 'enroll', '--data', data])).stdout).trim();
    const fleet = await enrollDevices({ url, enrollToken: enroll, count: o.devices });
    const file = join(work, 'profiled-devices.json');
    await writeFile(file, JSON.stringify(fleet));
    await load(url, file, ['--concurrency', String(o.concurrency)], o.seconds);
  } finally {
    child.kill('SIGTERM');
    await child;
  }
}
