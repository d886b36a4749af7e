/** Runs scripts/bench/delta.ts as a child process and turns its figures into table rows. */
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, type BenchRow } from './util.js';

interface Pair {
  pair: string;
  otaabWireBytes: number;
  otaabRequests: number;
  casyncBytes?: number;
}

/** otaab's delta wire bytes against casync's (new chunks plus .caibx) on pairs a and b. */
export async function benchDelta(work: string, mib: number): Promise<BenchRow[]> {
  const out = join(work, 'delta.json');
  await execa('node', [join(ROOT, 'dist', 'scripts', 'bench', 'delta.js'), '--size-mib', String(mib), '--dir', work, '--json', out], { stdio: 'inherit' });
  const pairs = JSON.parse(await readFile(out, 'utf8')) as Pair[];
  return pairs
    .filter((p) => p.casyncBytes !== undefined)
    .map((p) => ({
      bench: 'delta',
      // Pair c is a 160 MiB file system image whatever --size-mib says.
      metric: `delta wire bytes, ${p.pair} (${p.pair.startsWith('c:') ? '160' : mib} MiB)`,
      ours: p.otaabWireBytes / 1e6,
      baseline: p.casyncBytes! / 1e6,
      unit: 'MB',
      ratio: p.casyncBytes! / p.otaabWireBytes,
      goal: '<= casync',
      met: p.otaabWireBytes <= p.casyncBytes!,
      note: `${p.otaabRequests} requests; casync: new chunks + .caibx`,
    }));
}

interface ApplyRun {
  mode: 'full' | 'delta' | 'casync';
  seconds: number;
  peakAnonMiB: number;
  peakRssMiB: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const range = (xs: number[], d = 2): string => `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}`;

/**
 * Apply time and peak RssAnon of a delta install against a full install of the same image from
 * a local file (alternating runs, scripts/bench/delta-apply.ts), with casync extract --seed on
 * the same images beside them.
 */
export async function benchDeltaApply(work: string, mib: number, runs: number): Promise<BenchRow[]> {
  const out = join(work, 'delta-apply.json');
  await execa('node', [join(ROOT, 'dist', 'scripts', 'bench', 'delta-apply.js'), '--size-mib', String(mib), '--runs', String(runs), '--dir', work, '--json', out], { stdio: 'inherit' });
  const r = (JSON.parse(await readFile(out, 'utf8')) as { runs: ApplyRun[] }).runs;
  const of = (m: ApplyRun['mode']): ApplyRun[] => r.filter((x) => x.mode === m);
  const full = of('full');
  const delta = of('delta');
  const casync = of('casync')[0]!;
  const dT = median(delta.map((x) => x.seconds));
  const fT = median(full.map((x) => x.seconds));
  const dM = Math.max(...delta.map((x) => x.peakAnonMiB));
  return [
    {
      bench: 'delta',
      metric: `delta apply time, 4 MiB changed, from a local file (${mib} MiB)`,
      ours: dT,
      baseline: fT,
      unit: 's',
      ratio: fT / dT,
      goal: '<= full install of the same image',
      met: dT <= fT,
      note: `median of ${delta.length} (${range(delta.map((x) => x.seconds))} s); full ${range(full.map((x) => x.seconds))} s; casync extract --seed ${casync.seconds.toFixed(2)} s`,
    },
    {
      bench: 'delta',
      metric: `delta apply peak RssAnon (${mib} MiB)`,
      ours: dM,
      baseline: casync.peakRssMiB,
      unit: 'MiB',
      ratio: casync.peakRssMiB / dM,
      goal: '<= 64 MiB (aim 48)',
      met: dM <= 64,
      note: `max of ${delta.length} runs (${range(delta.map((x) => x.peakAnonMiB), 1)}); full install ${range(full.map((x) => x.peakAnonMiB), 1)} MiB; baseline: casync extract --seed, peak RSS`,
    },
  ];
}
