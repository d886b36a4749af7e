// A local bundle file is read into a ring of two buffers: every byte arrives in order, from any
// offset, and no memory is allocated per chunk (the third chunk reuses the first one's).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../agent/infra/bundle-source.js';
import { CHUNK } from '../../shared/hashing.js';
import { pseudoRandom } from './helpers/bundles.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-src-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('bundle source: a local file', () => {
  it('yields every byte in order from the offset, in two reused buffers', async () => {
    const data = pseudoRandom(3 * CHUNK + 1234, 21);
    const path = join(dir, 'b.otab');
    await writeFile(path, data);
    for (const offset of [0, 777]) {
      const src = await openSource(path, { offset });
      const copies: Buffer[] = [];
      const memory = new Set<ArrayBufferLike>();
      for await (const c of src.chunks) {
        copies.push(Buffer.from(c));
        memory.add(c.buffer);
      }
      expect(Buffer.concat(copies).equals(data.subarray(offset))).toBe(true);
      expect(src.bytesRead()).toBe(data.length - offset);
      expect(memory.size).toBe(2);
    }
  });

  it('stops reading and lets go of the file when closed before the end', async () => {
    const path = join(dir, 'c.otab');
    await writeFile(path, pseudoRandom(4 * CHUNK, 22));
    const src = await openSource(path, { maxBytes: 4 * CHUNK });
    const it = src.chunks[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    src.close();
    expect((await it.next()).done).toBe(true);
  });
});
