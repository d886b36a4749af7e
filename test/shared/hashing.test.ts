// Streaming hashes over files: whole files and byte ranges across the read size, and the
// two-buffer read-ahead never changes a chunk while the callback still works on it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK, forEachChunk, hashFile, sha256Hex } from '../../shared/hashing.js';

let dir: string;
let file: string;
let bytes: Buffer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-hash-'));
  file = join(dir, 'data');
  bytes = Buffer.alloc(2 * CHUNK + 777);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  await writeFile(file, bytes);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('hashFile', () => {
  it('hashes a whole file and ranges that start and end inside reads', async () => {
    expect(await hashFile(file)).toEqual({ sha256: sha256Hex(bytes), size: bytes.length });
    for (const [start, end] of [
      [0, CHUNK],
      [5, CHUNK + 5],
      [CHUNK - 1, 2 * CHUNK + 1],
      [100, bytes.length],
      [CHUNK, CHUNK],
    ] as const) {
      expect(await hashFile(file, start, end)).toEqual({ sha256: sha256Hex(bytes.subarray(start, end)), size: end - start });
    }
    // Past the end of the file: what is there.
    expect((await hashFile(file, 2 * CHUNK, 3 * CHUNK)).size).toBe(777);
  });
});

describe('forEachChunk', () => {
  it('keeps a chunk unchanged until the callback is done with it', async () => {
    const seen: Buffer[] = [];
    await forEachChunk(file, async (chunk) => {
      const before = Buffer.from(chunk);
      // The read of the next chunk runs meanwhile, into the other buffer.
      await sleep(20);
      expect(chunk.equals(before)).toBe(true);
      seen.push(before);
    });
    expect(Buffer.concat(seen).equals(await readFile(file))).toBe(true);
    expect(seen.map((c) => c.length)).toEqual([CHUNK, CHUNK, 777]);
  });

  it("passes the callback's error on, after the read ahead settled", async () => {
    await expect(
      forEachChunk(file, () => {
        throw new Error('consumer failed');
      }),
    ).rejects.toThrow('consumer failed');
    await expect(forEachChunk(join(dir, 'absent'), () => undefined)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
