/**
 * Benchmark 2: the agent's memory during an install (benchmark 1's set-up) at several image
 * sizes: peak RSS (VmHWM) and peak anonymous RSS (RssAnon polled every ~20 ms, so mapped file
 * pages neither hide nor inflate anything). Goal: under 64 MiB, and flat: the largest image
 * costs at most a few MiB more than the smallest.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_CLI } from '../fleet/device.js';
import { footprint, type InstallRun } from './agent-run.js';
import type { BenchServer } from './fixture.js';
import { installOnce, releaseImage } from './install.js';
import { median, randomFile, type BenchRow } from './util.js';

/** Memory budget of the agent during an install, MiB. */
export const LIMIT_MIB = 64;
/** How much more the largest image may cost than the smallest, MiB. */
export const FLAT_MIB = 4;

/** Runs benchmark 2 at each of `sizes` MiB, `runs` installs each. */
export async function benchMemory(srv: BenchServer, sizes: number[], runs: number): Promise<BenchRow[]> {
  const token = await srv.enroll('bench-memory');
  const dir = join(srv.work, 'memory');
  const peaks: { mib: number; rss: number; anon: number; runs: InstallRun[] }[] = [];
  for (const [k, mib] of sizes.entries()) {
    const image = join(srv.work, `memory-${mib}.img`);
    await randomFile(image, mib);
    const rel = await releaseImage(srv, image, mib, `2.${k}.0`);
    await rm(image, { force: true });
    const got: InstallRun[] = [];
    for (let i = 0; i < runs; i++) got.push(await installOnce(srv, rel, token, dir, `mem-${mib}-${i}`));
    peaks.push({ mib, rss: median(got.map((r) => r.peakRssMiB)), anon: median(got.map((r) => r.peakAnonMiB)), runs: got });
  }
  const smallest = peaks[0]!;
  // What any node process, and the agent with its modules loaded but nothing done, already
  // cost: the floor under the install's figures.
  const bare = await footprint(['-e', '0'], srv.work);
  const loaded = await footprint([AGENT_CLI, '--help'], srv.work);
  const rows: BenchRow[] = [
    { bench: 'memory', metric: 'reference: node -e 0 (peak RSS / RssAnon)', ours: bare.peakRssMiB, unit: 'MiB', note: `RssAnon ${bare.anonMiB.toFixed(1)} MiB at exit: the floor of any Node process` },
    { bench: 'memory', metric: 'reference: ota-agent --help (every module loaded, no work)', ours: loaded.peakRssMiB, unit: 'MiB', note: `RssAnon ${loaded.anonMiB.toFixed(1)} MiB at exit` },
  ];
  for (const p of peaks) {
    const secs = median(p.runs.map((r) => r.seconds));
    const samples = Math.min(...p.runs.map((r) => r.samples));
    rows.push({
      bench: 'memory',
      metric: `agent peak RSS during install, ${p.mib} MiB image`,
      ours: p.rss,
      unit: 'MiB',
      goal: `< ${LIMIT_MIB}${p === smallest ? '' : `, ≤ ${smallest.mib} MiB's + ${FLAT_MIB}`}`,
      met: p.rss < LIMIT_MIB && p.rss <= smallest.rss + FLAT_MIB,
      note: `VmHWM at exit; median of ${p.runs.length} (install ${secs.toFixed(1)} s)`,
    });
    rows.push({
      bench: 'memory',
      metric: `agent peak RssAnon during install, ${p.mib} MiB image`,
      ours: p.anon,
      unit: 'MiB',
      goal: `< ${LIMIT_MIB}${p === smallest ? '' : `, ≤ ${smallest.mib} MiB's + ${FLAT_MIB}`}`,
      met: p.anon < LIMIT_MIB && p.anon <= smallest.anon + FLAT_MIB,
      note: `max of ≥ ${samples} samples of /proc/PID/status every 20 ms; median of ${p.runs.length}`,
    });
  }
  return rows;
}
