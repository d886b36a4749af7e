import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexRawImage, stageChunkedGzip } from '../../shared/chunk-build.js';
import { CHUNK_HASH_BYTES, chunkHashMatches, encodeIndex, packIndex, parseIndex, unpackIndex, type ChunkEntry, type ChunkIndex } from '../../shared/chunk-index.js';
import { localChunks, planDelta } from '../../shared/delta/plan.js';
import { isOtaError } from '../../shared/errors.js';
import { IndexChecker } from '../../shared/index-check.js';
import { tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
let image: Buffer;
let raw: ChunkIndex;

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (isOtaError(err)) return err.code;
    throw err;
  }
  return undefined;
}

function withChunks(ix: ChunkIndex, edit: (c: ChunkEntry[]) => ChunkEntry[]): Buffer {
  return encodeIndex({ ...ix, chunks: edit([...ix.chunks]) });
}

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  image = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(1 << 20, 'text text text '), randomBytes(300_001)]);
  await writeFile(join(dir, 'img'), image);
  raw = (await indexRawImage(join(dir, 'img'))).index;
});
afterAll(() => cleanup());

describe('chunk index', () => {
  it('round-trips and covers the image', () => {
    const back = unpackIndex(packIndex(raw), 'ix');
    expect(back.chunks.length).toBe(raw.chunks.length);
    expect(back.imageSha256).toBe(createHash('sha256').update(image).digest('hex'));
    expect(back.chunks.at(-1)!.offset + back.chunks.at(-1)!.length).toBe(image.length);
  });

  it('writes 16-byte chunk hashes (index v2) and still reads v1 indexes with whole sha256s', () => {
    expect(raw.chunks.every((c) => c.sha256.length === CHUNK_HASH_BYTES)).toBe(true);
    const v2 = encodeIndex(raw);
    expect(v2[6]).toBe(2);
    // The same index as an agent of the 64 KiB era kept it: version 1, whole sha256 per chunk.
    const whole = raw.chunks.map((c) => ({ ...c, sha256: createHash('sha256').update(image.subarray(c.offset, c.offset + c.length)).digest() }));
    const v1 = encodeIndex({ ...raw, chunks: whole });
    expect(v1[6]).toBe(1);
    expect(v1.length - v2.length).toBe(16 * raw.chunks.length);
    const back = parseIndex(v1, 'v1');
    expect(back.chunks.map((c) => c.sha256.length)).toEqual(raw.chunks.map(() => 32));
    for (const c of back.chunks) expect(chunkHashMatches(image.subarray(c.offset, c.offset + c.length), c.sha256)).toBe(true);
    expect(chunkHashMatches(Buffer.from('other'), back.chunks.at(0)!.sha256)).toBe(false);
    // A kept v1 slot index matches every chunk of a v2 bundle index on the common prefix.
    const plan = planDelta(raw, localChunks(back), 0);
    expect(plan.localBytes).toBe(image.length);
    expect(plan.ranges).toEqual([]);
    // Mixed hash lengths, or another version number, are not an index.
    expect(() => encodeIndex({ ...raw, chunks: [whole[0]!, ...raw.chunks.slice(1)] })).toThrow(RangeError);
    const v3 = Buffer.from(v2);
    v3[6] = 3;
    expect(code(() => parseIndex(v3, 'v3'))).toBe('INDEX_MALFORMED');
  });

  it('stages a gzip image that inflates whole and chunk by chunk', async () => {
    const c = await stageChunkedGzip(join(dir, 'img'), join(dir, 'img.gz'));
    const gz = await readFile(join(dir, 'img.gz'));
    expect(gunzipSync(gz).equals(image)).toBe(true);
    expect(c.size).toBe(gz.length);
    expect(c.index.storedSize).toBe(gz.length);
    const check = new IndexChecker(unpackIndex(packIndex(c.index), 'ix'), 'gz');
    for (let i = 0; i < gz.length; i += 4099) check.push(gz.subarray(i, i + 4099));
    check.finish();
    // The text part compresses: the payload is well below the image.
    expect(gz.length).toBeLessThan(image.length * 0.75);
  });

  it('refuses each kind of bad index with its own code', () => {
    const a = [...raw.chunks];
    const swap = (c: ChunkEntry[]): ChunkEntry[] => [c[0]!, c[1]!, c[0]!, ...c.slice(3)];
    const shift = (c: ChunkEntry[], k: number, d: number): ChunkEntry[] => c.map((x, i) => (i === k ? { ...x, offset: x.offset + d, storedOffset: x.storedOffset + d } : x));
    expect(code(() => parseIndex(withChunks(raw, swap), 'ix'))).toBe('INDEX_UNSORTED');
    expect(code(() => parseIndex(withChunks(raw, (c) => shift(c, 1, -10)), 'ix'))).toBe('INDEX_OVERLAP');
    expect(code(() => parseIndex(withChunks(raw, (c) => shift(c, 1, 10)), 'ix'))).toBe('INDEX_GAP');
    const big = a[0]!.length + a[1]!.length;
    expect(code(() => parseIndex(encodeIndex({ ...raw, params: { ...raw.params, max: raw.params.max }, chunks: [{ ...a[0]!, length: raw.params.max + 1, storedLength: raw.params.max + 1 }] }), 'ix'))).toBe(
      'INDEX_CHUNK_TOO_LARGE',
    );
    expect(big).toBeGreaterThan(0);
    const last = a.length - 1;
    expect(code(() => parseIndex(withChunks(raw, (c) => c.map((x, i) => (i === last ? { ...x, length: x.length + 1, storedLength: x.storedLength + 1 } : x))), 'ix'))).toBe('INDEX_PAST_END');
    expect(code(() => parseIndex(withChunks(raw, (c) => c.slice(0, -1)), 'ix'))).toBe('INDEX_GAP');
    expect(code(() => parseIndex(withChunks(raw, (c) => c.map((x, i) => (i === 2 ? { ...x, storedLength: 5 } : x))), 'ix'))).toBe('INDEX_STORED_RANGE');
    const bad = encodeIndex(raw);
    bad[0] = 0x41;
    expect(code(() => parseIndex(bad, 'ix'))).toBe('INDEX_MALFORMED');
    expect(code(() => parseIndex(encodeIndex(raw).subarray(0, 200), 'ix'))).toBe('INDEX_MALFORMED');
    expect(code(() => unpackIndex(Buffer.from('not deflate at all'), 'ix'))).toBe('INDEX_MALFORMED');
  });
});
