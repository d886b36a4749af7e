/**
 * One `ota-agent install URL` on a booted simulated device, run as its own process so that it
 * can be timed from spawn to exit and its memory watched: RssAnon polled from /proc every
 * ~20 ms (mapped file pages neither hide nor inflate it), VmHWM read at exit by the rss-probe
 * preload. The time split comes from the transaction's own history (state entry times).
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FIRST_PAYLOAD_BYTE } from '../../shared/bundle-reader.js';
import { AGENT_ENV } from '../agent-env.js';
import { AGENT_CLI, type FleetDevice } from '../fleet/device.js';
import { ROOT } from './util.js';

/**
 * The server a bundle URL is on, and the device's token for it: written into the device's
 * config (`server.url`, `server.token`), so the agent sends the token to that origin and to no
 * other, as an enrolled device does. An empty token: the bundle is local, no server.
 */
export interface AgentAuth {
  origin: string;
  token: string;
}

/** What one install cost. */
export interface InstallRun {
  /** Spawn to exit of `ota-agent install`: what the technician waits for. */
  seconds: number;
  /** `downloading` entered → `installed` entered: download, verify, write, fsync. */
  downloadSeconds: number;
  /** `installed` entered → `armed` entered: the slot read back and hashed again. */
  readBackSeconds: number;
  /** Peak resident set (VmHWM at exit), MiB. */
  peakRssMiB: number;
  /** Largest RssAnon seen while polling, MiB. */
  peakAnonMiB: number;
  /** How many /proc samples the peak is taken from. */
  samples: number;
  /** Process start to the first payload byte read (the bundle reader's performance mark), ms. */
  firstByteMs: number;
}

const PROBE = join(ROOT, 'dist', 'scripts', 'rss-probe.js');

function kib(status: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
}

/** VmHWM and RssAnon at exit of `node ...args` (e.g. a CLI's --help: its modules loaded, no work done), MiB. */
export async function footprint(args: string[], scratch: string): Promise<{ peakRssMiB: number; anonMiB: number }> {
  const out = join(scratch, 'rss-footprint.json');
  await execa('node', ['--import', PROBE, ...args], { env: { OTA_RSS_PROBE_OUT: out } });
  const p = JSON.parse(await readFile(out, 'utf8')) as { vmHwmKiB: number; rssAnonKiB: number };
  await rm(out, { force: true });
  return { peakRssMiB: p.vmHwmKiB / 1024, anonMiB: p.rssAnonKiB / 1024 };
}

/** Polls /proc/<pid>/status until stopped; returns the largest RssAnon seen (KiB) and the sample count. */
function watchAnon(pid: number, everyMs: number): () => { maxKiB: number; samples: number } {
  let maxKiB = 0;
  let samples = 0;
  const sample = (): void => {
    try {
      const anon = kib(readFileSync(`/proc/${pid}/status`, 'utf8'), 'RssAnon');
      maxKiB = Math.max(maxKiB, anon);
      samples++;
    } catch {
      // The process is gone: the last sample stands.
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    return { maxKiB, samples };
  };
}

/** State entry times of the newest transaction, from `ota-agent history --json`. */
async function stateTimes(dev: FleetDevice): Promise<Map<string, number>> {
  const r = await dev.agent(['history', '--json', '--limit', '1']);
  if (r.code !== 0) throw new Error(`${dev.id}: ota-agent history exited ${r.code}: ${r.stderr}`);
  const h = JSON.parse(r.stdout) as { transactions: { events: { type: string; toState: string | null; at: string }[] }[] };
  const times = new Map<string, number>();
  for (const e of h.transactions[0]?.events ?? []) {
    if (e.type === 'transition' && e.toState && !times.has(e.toState)) times.set(e.toState, Date.parse(e.at));
  }
  return times;
}

/**
 * Runs `ota-agent install url` on `dev` (booted, idle) and measures it; throws unless it asked
 * for the reboot. `nodeArgs` go to node before the agent (e.g. --cpu-prof). The agent gets
 * the environment its launcher and unit give it (AGENT_ENV) and nothing else. `afterExit` runs
 * the moment the agent has exited, before the probe and the history are read (a `sync` whose
 * time belongs to the install's, as it does to a peer's); its seconds are `afterSeconds`.
 */
export async function measuredInstall(dev: FleetDevice, url: string, auth: AgentAuth, scratch: string, nodeArgs: string[] = [], cli = AGENT_CLI, afterExit?: () => Promise<unknown>): Promise<InstallRun & { afterSeconds: number }> {
  const probeOut = join(scratch, `rss-${dev.id}.json`);
  if (auth.token) {
    // After the boot: a daemon that had a server would have stayed to check in.
    const config = JSON.parse(await readFile(dev.configPath, 'utf8')) as Record<string, unknown>;
    await writeFile(dev.configPath, `${JSON.stringify({ ...config, server: { url: auth.origin, token: auth.token } }, null, 2)}\n`);
  }
  const started = process.hrtime.bigint();
  const child = execa('node', [...nodeArgs, '--import', PROBE, cli, 'install', url, '--config', dev.configPath], {
    reject: false,
    stdin: 'ignore',
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...AGENT_ENV, OTA_RSS_PROBE_OUT: probeOut },
  });
  const stop = watchAnon(child.pid!, 20);
  const r = await child;
  const exited = process.hrtime.bigint();
  const seconds = Number(exited - started) / 1e9;
  if (r.exitCode === 0) await afterExit?.();
  const afterSeconds = Number(process.hrtime.bigint() - exited) / 1e9;
  const anon = stop();
  if (r.exitCode !== 0) throw new Error(`${dev.id}: ota-agent install exited ${r.exitCode ?? r.signal}: ${String(r.stderr).slice(-2000)}`);
  const probe = JSON.parse(await readFile(probeOut, 'utf8')) as { vmHwmKiB: number; rssAnonKiB: number; marks?: Record<string, number> };
  await rm(probeOut, { force: true });
  const t = await stateTimes(dev);
  const span = (from: string, to: string): number => ((t.get(to) ?? NaN) - (t.get(from) ?? NaN)) / 1000;
  return {
    seconds,
    afterSeconds,
    downloadSeconds: span('downloading', 'installed'),
    readBackSeconds: span('installed', 'armed'),
    peakRssMiB: probe.vmHwmKiB / 1024,
    peakAnonMiB: Math.max(anon.maxKiB, probe.rssAnonKiB) / 1024,
    samples: anon.samples,
    firstByteMs: probe.marks?.[FIRST_PAYLOAD_BYTE] ?? NaN,
  };
}
