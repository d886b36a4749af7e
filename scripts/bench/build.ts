/**
 * Benchmark 3: `ota-release build` of a random image against the same work done by standard
 * tools: `sha256sum` of the input (our first pass hashes it) then `tar -cf` (our second pass
 * writes the bundle). Medians of several runs, page cache dropped before each.
 */
import { execa } from 'execa';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cliPath, dropCaches, median, timed, type BenchRow } from './util.js';

/** Runs benchmark 3 in `work` on an existing random image of `mib` MiB. */
export async function benchBuild(work: string, image: string, mib: number, runs: number): Promise<BenchRow[]> {
  await execa('node', [cliPath('release'), 'keygen', '--out', join(work, 'bench')]);
  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = join(work, 'b.otab');
    await dropCaches();
    ours.push(await timed(() => execa('node', [cliPath('release'), 'build', '--key', join(work, 'bench.key'), '--product', 'bench', '--version', '1.0.0', '--compatible', 'x86-gw', '--image', `rootfs=${image}`, '-o', out])));
    await rm(out);
    await dropCaches();
    base.push(await timed(async () => {
      await execa('sha256sum', [image]);
      await execa('tar', ['-cf', out, '-C', work, image.slice(work.length + 1)]);
      await execa('sync', ['-f', out]);
    }));
    await rm(out);
  }
  const o = median(ours);
  const b = median(base);
  return [
    { bench: 'build', metric: `ota-release build, ${mib} MiB image`, ours: mib / o, baseline: mib / b, unit: 'MiB/s', ratio: b / o, note: `median of ${runs}: ${o.toFixed(2)} s vs sha256sum+tar ${b.toFixed(2)} s` },
  ];
}
