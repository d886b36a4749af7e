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
      metric: `delta wire bytes, ${p.pair} (${mib} MiB)`,
      ours: p.otaabWireBytes / 1e6,
      baseline: p.casyncBytes! / 1e6,
      unit: 'MB',
      ratio: p.casyncBytes! / p.otaabWireBytes,
      goal: '<= casync',
      met: p.otaabWireBytes <= p.casyncBytes!,
      note: `${p.otaabRequests} requests; casync: new chunks + .caibx`,
    }));
}
