/** The machine the figures came from: CPU, cores, memory, the disk under the work directory, Node, kernel, load. */
import { execa } from 'execa';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus, loadavg, release, totalmem } from 'node:os';

/** What docs/PERFORMANCE.md quotes about the machine. */
export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  /** Device, file system and kind of the disk holding the work directory. */
  disk: string;
  node: string;
  kernel: string;
  /** 1-minute load average when the run started and ended: other work on the same cores. */
  load: { start: number; end?: number };
  /** Latency of a 4 KiB write + fdatasync in the work directory, ms: what every durable commit pays. */
  fdatasyncMs: { p50: number; p99: number };
}

/** Times `n` 4 KiB overwrites each followed by fdatasync in `dir`. */
export function fdatasyncLatency(dir: string, n = 200): { p50: number; p99: number } {
  const path = join(dir, 'fdatasync-probe');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096, 0x5a);
  const ms: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      writeSync(fd, block, 0, block.length, (i % 16) * 4096);
      fdatasyncSync(fd);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(n / 2)]!, p99: ms[Math.min(n - 1, Math.ceil(n * 0.99) - 1)]! };
}

async function diskOf(dir: string): Promise<string> {
  try {
    const r = await execa('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '-T', dir]);
    const [source = '?', fstype = '?'] = String(r.stdout).trim().split(/\s+/);
    const dev = source.replace(/^\/dev\//, '').replace(/\[.*$/, '');
    const base = dev.replace(/p?\d+$/, '');
    const rotational = await readFile(`/sys/block/${base}/queue/rotational`, 'utf8').catch(() => readFile(`/sys/block/${dev}/queue/rotational`, 'utf8').catch(() => ''));
    const virtio = base.startsWith('vd') ? 'virtio block device, ' : '';
    return `${source} (${fstype}, ${virtio}queue/rotational=${rotational.trim() || '?'})`;
  } catch {
    return 'unknown';
  }
}

/** Describes this machine; `dir` is where the benchmarks write. */
export async function describeMachine(dir: string): Promise<Machine> {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    disk: await diskOf(dir),
    node: process.version,
    kernel: release(),
    load: { start: loadavg()[0] ?? 0 },
    fdatasyncMs: fdatasyncLatency(dir),
  };
}
