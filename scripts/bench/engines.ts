/**
 * Benchmark 4c: check-ins on each database engine, in the same run and on the same machine:
 * one `ota-server` on SQLite (the default), one on PostgreSQL, and two instances sharing one
 * PostgreSQL database (each with its own load generator process and half the devices). For each:
 * a closed loop for the most signed answers per second, and an open loop at a fixed rate for
 * the p99 latency devices see. PostgreSQL is Debian's cluster on this machine
 * (scripts/setup/postgres.sh), each configuration on a fresh schema.
 *
 * With two instances the rate is the sum of both generators and the p99 the larger of their
 * two p99s (each generator sees its own instance).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { PgDatabase } from '../../server/db/pg-sync.js';
import { enrollDevices, type CheckinLoadStats } from '../fleet/load.js';
import { ServerProcess, createToken } from '../fleet/server.js';
import { schemaUrl } from '../fleet/test-database.js';
import { ROOT, cliPath, type BenchRow } from './util.js';

const LOAD_CLI = join(ROOT, 'dist', 'scripts', 'fleet', 'load.js');

/** Options of benchmark 4c. */
export interface EnginesBenchOptions {
  devices: number;
  /** Closed-loop check-ins in flight per instance. */
  concurrency: number;
  /** Highest open-loop rate for the latency run, per second (over all instances). */
  rate: number;
  seconds: number;
}

interface Config {
  name: string;
  instances: number;
  postgres: boolean;
}

const CONFIGS: Config[] = [
  { name: 'SQLite, 1 instance', instances: 1, postgres: false },
  { name: 'PostgreSQL, 1 instance', instances: 1, postgres: true },
  { name: 'PostgreSQL, 2 instances', instances: 2, postgres: true },
];

async function load(url: string, devicesFile: string, mode: string[], seconds: number): Promise<CheckinLoadStats> {
  const r = await execa('node', [LOAD_CLI, 'run', '--url', url, '--devices', devicesFile, ...mode, '--seconds', String(seconds), '--warmup-seconds', '2', '--verify-every', '250', '--json']);
  return JSON.parse(String(r.stdout)) as CheckinLoadStats;
}

/** Runs one load per instance at once; rates add up, the p99 is the worst instance's. */
async function loads(urls: string[], files: string[], mode: (i: number) => string[], seconds: number): Promise<{ perSecond: number; p99: number; non200: number }> {
  const all = await Promise.all(urls.map((u, i) => load(u, files[i]!, mode(i), seconds)));
  return {
    perSecond: all.reduce((n, s) => n + s.perSecond, 0),
    p99: Math.max(...all.map((s) => s.latencyMs.p99)),
    non200: all.reduce((n, s) => n + Object.entries(s.statuses).reduce((m, [k, v]) => (k === '200' ? m : m + v), 0), 0),
  };
}

/** Runs benchmark 4c in `work`. */
export async function benchEngines(work: string, o: EnginesBenchOptions): Promise<BenchRow[]> {
  const base = execFileSync('bash', [join(ROOT, 'scripts', 'setup', 'postgres.sh')], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
  const rows: BenchRow[] = [];
  const results: { c: Config; closed: { perSecond: number; p99: number; non200: number }; open: { perSecond: number; p99: number; non200: number }; rate: number }[] = [];
  for (const c of CONFIGS) {
    const dir = join(work, c.name.replace(/\W+/g, '-'));
    await mkdir(dir, { recursive: true });
    await execa('node', [cliPath('release'), 'keygen', '--out', join(dir, 'release')]);
    const schema = `bench_${randomBytes(6).toString('hex')}`;
    const env: Record<string, string> = c.postgres ? { OTA_SERVER_DATABASE_URL: schemaUrl(base, schema) } : {};
    const data = join(dir, 'server-data');
    const opts = { data, releaseKeys: [join(dir, 'release.pub')], env };
    const servers: ServerProcess[] = [await ServerProcess.start(opts)];
    try {
      for (let i = 1; i < c.instances; i++) servers.push(await ServerProcess.start(opts));
      const enroll = await createToken(data, 'enroll', 'bench-factory', env);
      const fleet = await enrollDevices({ url: servers[0]!.url, enrollToken: enroll, count: o.devices });
      // Each instance's generator gets its share of the devices.
      const files: string[] = [];
      for (let i = 0; i < c.instances; i++) {
        const f = join(dir, `devices-${i}.json`);
        await writeFile(f, JSON.stringify({ ...fleet, devices: fleet.devices.filter((_, k) => k % c.instances === i) }));
        files.push(f);
      }
      const urls = servers.map((s) => s.url);
      const closed = await loads(urls, files, () => ['--concurrency', String(o.concurrency)], o.seconds);
      // The open loop offers at most half of what the closed loop reached: a p99 of a queue
      // that only grows would measure the run's length, not the engine.
      const rate = Math.max(4, Math.min(o.rate, Math.round(closed.perSecond / 2)));
      const open = await loads(urls, files, () => ['--rate', String(Math.max(1, Math.round(rate / c.instances)))], o.seconds);
      results.push({ c, closed, open, rate });
    } finally {
      await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
      if (c.postgres) {
        const db = new PgDatabase(base);
        try {
          db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          db.close();
        }
      }
    }
  }
  const sqlite = results[0]!;
  for (const r of results) {
    const vs = r === sqlite ? '' : `; ${(r.closed.perSecond / sqlite.closed.perSecond).toFixed(2)}× SQLite's rate`;
    rows.push({
      bench: 'engines',
      metric: `check-ins/s, ${r.c.name}, ${o.devices} devices, ${o.concurrency} in flight per instance (closed loop)`,
      ours: r.closed.perSecond,
      unit: '/s',
      note: `p99 ${r.closed.p99.toFixed(1)} ms under the closed loop; ${r.closed.non200} non-200${vs}`,
    });
    rows.push({
      bench: 'engines',
      metric: `check-in p99 latency, ${r.c.name}, ${r.rate}/s offered (open loop, half the closed loop's rate, at most ${o.rate}/s)`,
      ours: r.open.p99,
      unit: 'ms',
      note: `${r.open.perSecond.toFixed(0)}/s answered; ${r.open.non200} non-200; latency from the scheduled start`,
    });
  }
  return rows;
}
