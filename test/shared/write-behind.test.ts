// The batched writer behind raw slots and uploads: every byte lands in order from its start
// offset, short writes go on, and a failed write is reported once it is awaited.
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants } from 'node:fs';
import { CopyingWriteBehind, DirectWriteBehind, WRITE_BATCH, WriteBehind } from '../../shared/write-behind.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-wb-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** Chunks of uneven sizes, some empty, some larger than a batch, with recognisable bytes. */
function chunks(): Buffer[] {
  const sizes = [1, 65_536, 0, 3, WRITE_BATCH + 17, 65_536, 500_000, 2 * WRITE_BATCH, 4096, 0, 77];
  let v = 0;
  return sizes.map((n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (v++ * 131) & 0xff;
    return b;
  });
}

describe('WriteBehind', () => {
  it('writes every chunk in order from its start offset', async () => {
    const path = join(dir, 'plain');
    const fh = await open(path, 'w+');
    const parts = chunks();
    const w = new WriteBehind(fh, 10);
    for (const c of parts) await w.add(c);
    await w.drain();
    await fh.close();
    const got = await readFile(path);
    expect(got.subarray(0, 10).equals(Buffer.alloc(10))).toBe(true);
    expect(got.subarray(10).equals(Buffer.concat(parts))).toBe(true);
  });

  it('goes on after a short write', async () => {
    // A short write cannot be provoked on a local file; this handle writes at most 100,000
    // bytes per call, as a write interrupted by a signal or a nearly full disk would.
    const disk = Buffer.alloc(8 * WRITE_BATCH);
    const calls: number[] = [];
    const handle = {
      writev: async (bufs: Buffer[], pos: number) => {
        const all = Buffer.concat(bufs);
        const n = Math.min(all.length, 100_000);
        all.copy(disk, pos, 0, n);
        calls.push(n);
        return { bytesWritten: n, buffers: bufs };
      },
    } as unknown as FileHandle;
    const parts = chunks();
    const w = new WriteBehind(handle, 0);
    for (const c of parts) await w.add(c);
    await w.drain();
    const total = parts.reduce((n, c) => n + c.length, 0);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(total);
    expect(disk.subarray(0, total).equals(Buffer.concat(parts))).toBe(true);
  });

  it('reports a failed write, named by its offset, from the next call that waits', async () => {
    // /dev/full answers every write with ENOSPC.
    const fh = await open('/dev/full', 'r+');
    try {
      const w = new WriteBehind(fh, 0, (at, cause) => new Error(`at ${at}: ${(cause as NodeJS.ErrnoException).code}`));
      await w.add(Buffer.alloc(WRITE_BATCH));
      await expect(w.drain()).rejects.toThrow('at 0: ENOSPC');
      await w.abandon();
    } finally {
      await fh.close();
    }
  });
});

describe('CopyingWriteBehind', () => {
  it('lands every byte in order although each chunk is overwritten once added', async () => {
    // What a source reading into a ring of buffers does: the same memory comes back changed.
    const path = join(dir, 'copying');
    const fh = await open(path, 'w+');
    const parts = chunks();
    const w = new CopyingWriteBehind(fh, 10);
    for (const c of parts) {
      await w.add(c);
      c.fill(0xee);
    }
    await w.drain();
    await fh.close();
    const got = await readFile(path);
    expect(got.subarray(0, 10).equals(Buffer.alloc(10))).toBe(true);
    expect(got.subarray(10).equals(Buffer.concat(chunks()))).toBe(true);
  });

  it('reports a failed write, naming its offset, from the next add or drain', async () => {
    const fh = await open('/dev/full', 'w');
    const w = new CopyingWriteBehind(fh, 0, (at, cause) => new Error(`at ${at}: ${(cause as Error).message}`), 4096);
    try {
      await expect(
        (async () => {
          for (let i = 0; i < 4; i++) await w.add(Buffer.alloc(4096, 1));
          await w.drain();
        })(),
      ).rejects.toThrow(/^at 0: .*ENOSPC/);
    } finally {
      await w.abandon();
      await fh.close();
    }
  });
});

describe('DirectWriteBehind', () => {
  it('writes whole blocks with O_DIRECT and an unaligned tail through the buffered handle', async () => {
    // ext4 files take O_DIRECT as block devices do: the same alignment rules apply.
    const path = join(dir, 'direct');
    const fh = await open(path, 'w+');
    const dfh = await open(path, constants.O_WRONLY | constants.O_DIRECT);
    const parts = chunks();
    const w = new DirectWriteBehind(fh, dfh, 8192);
    for (const c of parts) {
      await w.add(c);
      c.fill(0xee);
    }
    await w.drain();
    await fh.sync();
    await dfh.close();
    await fh.close();
    const got = await readFile(path);
    const want = Buffer.concat(chunks());
    expect(want.length % 4096).not.toBe(0);
    expect(got.subarray(0, 8192).equals(Buffer.alloc(8192))).toBe(true);
    expect(got.subarray(8192).equals(want)).toBe(true);
  });

  it('refuses an unaligned start', async () => {
    const fh = await open(join(dir, 'direct-unaligned'), 'w+');
    try {
      expect(() => new DirectWriteBehind(fh, fh, 10)).toThrow(/multiples of 4096/);
    } finally {
      await fh.close();
    }
  });
});
