/** Shared pieces of the benchmarks: timing, medians, page-cache dropping, random inputs. */
import { execa } from 'execa';
import { randomFillSync } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** Repository root (scripts are compiled to dist/scripts/bench). */
export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '..');
/** Compiled CLI path. */
export const cliPath = (name: 'release' | 'agent' | 'server'): string => join(ROOT, 'dist', name, 'cli.js');

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Percentile (0-100) of numbers. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

/** Drops the page cache so reads come from the disk; returns false where that is not allowed. */
export async function dropCaches(): Promise<boolean> {
  try {
    await execa('sync');
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** Seconds taken by `fn`. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** Writes `mib` MiB of random bytes to `path`. */
export async function randomFile(path: string, mib: number): Promise<void> {
  const fh = await open(path, 'w');
  const block = Buffer.alloc(1 << 20);
  try {
    for (let i = 0; i < mib; i++) await fh.write(randomFillSync(block));
  } finally {
    await fh.close();
  }
}

/** One row of the results table. */
export interface BenchRow {
  bench: string;
  metric: string;
  ours: number;
  baseline?: number;
  unit: string;
  /** ours/baseline expressed so that higher is better for us (throughput ratio). */
  ratio?: number;
  goal?: string;
  met?: boolean;
  note?: string;
}
