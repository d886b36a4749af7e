/**
 * Benchmark 7: start-up. How long `ota-agent install FILE` takes from the start of its process
 * to the first payload byte it reads (the bundle reader's performance mark, read at exit by the
 * rss-probe preload, in ms after Node's time origin): loading the agent, opening the device and
 * its store, checking the bundle's signature and the device's state. The baseline in the same
 * run, alternating with ours, is a bare Node process under the same preload that makes the same
 * mark as its first statement: Node's own start, the part no agent code can shorten.
 *
 * Two conditions: warm (the agent's file and Node in the page cache, as on a device that ran
 * the agent moments before, e.g. its daemon) and cold (the page cache dropped before each run of
 * either side, as after a reboot; needs root). The image is small (16 MiB by default): what is
 * measured ends at the first payload byte.
 */
import { execa } from 'execa';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FIRST_PAYLOAD_BYTE } from '../../shared/bundle-reader.js';
import { measuredInstall, type InstallRun } from './agent-run.js';
import { bootedDevice } from './device.js';
import type { BenchServer } from './fixture.js';
import { dropCaches, median, randomFile, ROOT, type BenchRow } from './util.js';

/** Process start to the first payload byte, ms. */
export const FIRST_BYTE_MS = 150;

const PROBE = join(ROOT, 'dist', 'scripts', 'rss-probe.js');

/** Bare Node under the same preload, marking FIRST_PAYLOAD_BYTE as its first statement: ms after the time origin. */
export async function bareNodeMark(scratch: string): Promise<number> {
  const out = join(scratch, 'rss-bare.json');
  // The agent's environment (agent-run.ts): nothing inherited, e.g. no NODE_EXTRA_CA_CERTS,
  // which makes Node read a certificate bundle as it starts.
  await execa('node', ['--import', PROBE, '-e', `performance.mark(${JSON.stringify(FIRST_PAYLOAD_BYTE)})`], { extendEnv: false, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', OTA_RSS_PROBE_OUT: out } });
  const p = JSON.parse(await readFile(out, 'utf8')) as { marks?: Record<string, number> };
  await rm(out, { force: true });
  return p.marks?.[FIRST_PAYLOAD_BYTE] ?? NaN;
}

/** What benchmark 7 measured, per condition. */
export interface StartBench {
  rows: BenchRow[];
  runs: Record<string, { agent: InstallRun[]; bareMs: number[] }>;
}

const span = (xs: number[]): string => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;

/** Runs benchmark 7: `runs` installs of a `mib` MiB bundle with `cli` per condition, alternating with bare Node. */
export async function benchStart(srv: BenchServer, mib: number, runs: number, cli: string): Promise<StartBench> {
  const dir = join(srv.work, 'start');
  const image = join(srv.work, 'start-image.bin');
  const bundle = join(srv.work, 'start.otab');
  await randomFile(image, mib);
  await srv.build('7.0.0', ['--image', `rootfs=${image}`], bundle);
  await rm(image, { force: true });
  const cold = await dropCaches();
  const conditions: { name: string; drop: boolean }[] = [{ name: 'warm', drop: false }, ...(cold ? [{ name: 'cold', drop: true }] : [])];
  const rows: BenchRow[] = [];
  const all: StartBench['runs'] = {};
  try {
    for (const c of conditions) {
      const agent: InstallRun[] = [];
      const bareMs: number[] = [];
      for (let i = 0; i < runs; i++) {
        const id = `start-${c.name}-${i}`;
        const root = join(dir, id);
        const dev = await bootedDevice({ root, id, kind: 'raw', slotSize: mib * 2 ** 20, trustedKeys: [srv.pub], fullInstall: true });
        try {
          // Alternate which side goes first, so a drift in the machine's load favours neither.
          const bare = async (): Promise<void> => {
            if (c.drop) await dropCaches();
            bareMs.push(await bareNodeMark(dir));
          };
          const ours = async (): Promise<void> => {
            if (c.drop) await dropCaches();
            agent.push(await measuredInstall(dev, bundle, { origin: 'http://127.0.0.1:9', token: '' }, dir, [], cli));
          };
          if (i % 2 === 0) {
            await bare();
            await ours();
          } else {
            await ours();
            await bare();
          }
        } finally {
          await dev.stop();
          await rm(root, { recursive: true, force: true });
        }
      }
      const fb = agent.map((r) => r.firstByteMs);
      rows.push({
        bench: 'start',
        metric: `ota-agent install FILE: process start to the first payload byte, ${c.name}`,
        ours: median(fb),
        baseline: median(bareMs),
        unit: 'ms',
        ratio: median(fb) / median(bareMs),
        goal: `≤ ${FIRST_BYTE_MS}`,
        met: median(fb) <= FIRST_BYTE_MS,
        note: `median (min–max) of ${runs}: agent ${span(fb)} ms, bare node ${span(bareMs)} ms to its first statement (the baseline), ${c.drop ? 'page cache dropped before each' : 'page cache warm'}; ${cli.endsWith('.mjs') ? 'the bundle (launcher, its code and V8 code cache; openpgp, got and execa not loaded)' : 'dist/agent/cli.js'}; ratio: a time ratio, lower is better`,
      });
      all[c.name] = { agent, bareMs };
    }
    if (!cold) rows.push({ bench: 'start', metric: 'start-up, page cache dropped', ours: NaN, unit: 'ms', note: 'not run: dropping the page cache needs root' });
    return { rows, runs: all };
  } finally {
    await rm(bundle, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
}
