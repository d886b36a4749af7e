// A local bundle file is read with O_DIRECT into a ring of aligned buffers: every byte arrives in
// order, from any offset, no memory is allocated per chunk (the ring's buffers come round again),
// and a file system that refuses O_DIRECT (ramfs) is read through the page cache the same way.
import { execFileSync } from 'node:child_process';
import { constants, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READS_AHEAD, openSource } from '../../agent/infra/bundle-source.js';
import { CHUNK } from '../../shared/hashing.js';
import { pseudoRandom } from './helpers/bundles.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-src-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** Whether this process holds `path` open with O_DIRECT (the flags in /proc/self/fdinfo, octal). */
function openDirect(path: string): boolean | undefined {
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== path) continue;
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    return (parseInt(flags!, 8) & constants.O_DIRECT) !== 0;
  }
  return undefined;
}

/** Reads `path` from each offset; checks the bytes, the ring's reuse and how the file was opened. */
async function readsBack(path: string, data: Buffer, direct: boolean): Promise<void> {
  for (const offset of [0, 777, 4096, CHUNK + 5]) {
    const src = await openSource(path, { offset });
    const copies: Buffer[] = [];
    const views = new Map<string, number>();
    let mode: boolean | undefined;
    for await (const c of src.chunks) {
      mode ??= openDirect(path);
      const copy = Buffer.from(c);
      copies.push(copy);
      // The reads in flight meanwhile go into other buffers: the lent chunk holds still.
      await new Promise((r) => setTimeout(r, 3));
      expect(c.equals(copy)).toBe(true);
      // A view's place in memory, from the start of its 1 MiB buffer.
      const at = `${c.byteOffset - (c.byteOffset % CHUNK)}`;
      views.set(at, (views.get(at) ?? 0) + 1);
      expect(c.byteOffset % CHUNK === 0 || copies.length === 1).toBe(true);
    }
    expect(Buffer.concat(copies).equals(data.subarray(offset))).toBe(true);
    expect(src.bytesRead()).toBe(data.length - offset);
    expect(mode).toBe(direct);
    // Never more buffers than the ring holds, and with more chunks than that they come round.
    expect(views.size).toBeLessThanOrEqual(READS_AHEAD + 1);
    if (copies.length > READS_AHEAD + 1) expect(Math.max(...views.values())).toBeGreaterThan(1);
  }
}

describe('bundle source: a local file', () => {
  it('reads with O_DIRECT and yields every byte in order from the offset, in reused buffers', async () => {
    const data = pseudoRandom(6 * CHUNK + 1234, 21);
    const path = join(dir, 'b.otab');
    await writeFile(path, data);
    await readsBack(path, data, true);
  });

  it('stops reading and lets go of the file when closed before the end', async () => {
    const path = join(dir, 'c.otab');
    await writeFile(path, pseudoRandom(8 * CHUNK, 22));
    const src = await openSource(path, { maxBytes: 8 * CHUNK });
    const it = src.chunks[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    src.close();
    expect((await it.next()).done).toBe(true);
    expect(openDirect(path)).toBeUndefined();
  });

  it('a file smaller than one read, and an offset at its end', async () => {
    const data = pseudoRandom(5000, 23);
    const path = join(dir, 'small.otab');
    await writeFile(path, data);
    for (const offset of [0, 4999, 5000]) {
      const src = await openSource(path, { offset });
      const got: Buffer[] = [];
      for await (const c of src.chunks) got.push(Buffer.from(c));
      expect(Buffer.concat(got).equals(data.subarray(offset))).toBe(true);
    }
  });

  // ramfs has no O_DIRECT: the open is refused with EINVAL. Mounting it takes root (as in CI).
  const root = process.getuid?.() === 0;
  it.skipIf(!root)('reads a file on a file system without O_DIRECT (ramfs) through the page cache', async () => {
    const mnt = join(dir, 'ramfs');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'ramfs', 'otaab-test', mnt]);
    try {
      const data = pseudoRandom(5 * CHUNK + 99, 24);
      const path = join(mnt, 'r.otab');
      await writeFile(path, data);
      await readsBack(path, data, false);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
