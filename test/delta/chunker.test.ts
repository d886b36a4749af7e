import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKING, chunkStream, validChunkParams } from '../../shared/chunker.js';

async function lengths(data: Buffer, piece: number, p = DEFAULT_CHUNKING): Promise<number[]> {
  const input = (async function* () {
    for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece);
  })();
  const out: number[] = [];
  for await (const c of chunkStream(input, p)) out.push(c.length);
  return out;
}

describe('content-defined chunker', () => {
  const data = randomBytes(6 * 1024 * 1024);

  it('cuts the same way whatever the input block size, within min/max', async () => {
    const a = await lengths(data, 1 << 20);
    const b = await lengths(data, 7777);
    expect(b).toEqual(a);
    expect(a.reduce((x, y) => x + y, 0)).toBe(data.length);
    for (const n of a.slice(0, -1)) {
      expect(n).toBeGreaterThanOrEqual(DEFAULT_CHUNKING.min);
      expect(n).toBeLessThanOrEqual(DEFAULT_CHUNKING.max);
    }
    // Normalised chunking keeps the mean near avg (random data: within a factor of 1.5).
    const mean = data.length / a.length;
    expect(mean).toBeGreaterThan(DEFAULT_CHUNKING.avg / 1.5);
    expect(mean).toBeLessThan(DEFAULT_CHUNKING.avg * 1.5);
  });

  it('re-synchronises after an insertion: only chunks near it change', async () => {
    const edited = Buffer.concat([data.subarray(0, 3_000_000), Buffer.from('inserted bytes'), data.subarray(3_000_000)]);
    const cuts = (ls: number[]): Set<number> => {
      const s = new Set<number>();
      let at = 0;
      for (const n of ls) s.add((at += n));
      return s;
    };
    const before = [...cuts(await lengths(data, 1 << 20))];
    const after = cuts(await lengths(edited, 1 << 20));
    const shifted = before.filter((c) => c > 3_000_000).map((c) => c + 14);
    const kept = shifted.filter((c) => after.has(c)).length;
    expect(kept).toBeGreaterThanOrEqual(shifted.length - 2);
  });

  it('handles inputs shorter than the minimum and empty inputs', async () => {
    expect(await lengths(data.subarray(0, 100), 10)).toEqual([100]);
    expect(await lengths(Buffer.alloc(0), 10)).toEqual([]);
  });

  it('accepts only sane chunk sizes', () => {
    expect(validChunkParams(DEFAULT_CHUNKING)).toBe(true);
    expect(validChunkParams({ min: 16384, avg: 60000, max: 262144 })).toBe(false);
    expect(validChunkParams({ min: 65536, avg: 65536, max: 262144 })).toBe(false);
    expect(validChunkParams({ min: 16384, avg: 65536, max: 65536 })).toBe(false);
  });
});
