/**
 * Content-defined chunking (FastCDC with a gear hash and normalised chunking): a cut falls where
 * the rolling hash of the last 32 bytes matches a mask, so an insertion or a change moves only
 * the cuts near it and the rest of the image chunks the same way in every version. Streaming,
 * with memory bounded by the largest chunk plus one input block.
 */
import { createHash } from 'node:crypto';

/** Chunk size limits, in bytes. */
export interface ChunkParams {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
}

/**
 * The sizes every bundle uses unless told otherwise: 8/32/128 KiB (half casync's), chosen on
 * the measurements in docs/DELTA.md (file-system images and scattered changes send far less;
 * the 16-byte chunk hashes of index v2 keep the larger index cheap for one changed region).
 */
export const DEFAULT_CHUNKING: ChunkParams = { min: 8 * 1024, avg: 32 * 1024, max: 128 * 1024 };

/**
 * The gear table: 256 fixed pseudo-random 32-bit words. Part of the format (changing it moves
 * every cut), so it is derived from a fixed seed: sha256("otaab-gear-<i>"), first 4 bytes.
 */
const GEAR = new Int32Array(256);
for (let i = 0; i < 256; i++) GEAR[i] = createHash('sha256').update(`otaab-gear-${i}`).digest().readInt32BE(0);

/** True when `p` is a usable set of limits: powers of two, min < avg < max. */
export function validChunkParams(p: ChunkParams): boolean {
  const pow2 = (n: number): boolean => Number.isSafeInteger(n) && n >= 64 && (n & (n - 1)) === 0 && n <= 1 << 26;
  return pow2(p.avg) && Number.isSafeInteger(p.min) && p.min >= 64 && p.min < p.avg && Number.isSafeInteger(p.max) && p.max > p.avg && p.max <= 1 << 28;
}

/** True when two indexes were cut with the same sizes (only then can their chunks match). */
export function sameChunking(a: ChunkParams, b: ChunkParams): boolean {
  return a.min === b.min && a.avg === b.avg && a.max === b.max;
}

/** The two masks of normalised chunking (level 2): harder before `avg`, easier after. */
function masks(avg: number): { small: number; large: number } {
  const bits = Math.log2(avg);
  // Top bits of the hash: in a gear hash bit k depends on the last k+1 bytes, so the high bits mix most.
  const top = (n: number): number => (n >= 32 ? -1 : ~((1 << (32 - n)) - 1)) | 0;
  return { small: top(bits + 2), large: top(bits - 2) };
}

/** Length of the chunk that starts at `buf[start]` and may run to `end` (the data's end when `final`). */
export function cutPoint(buf: Uint8Array, start: number, end: number, p: ChunkParams, m = masks(p.avg)): number {
  const n = end - start;
  if (n <= p.min) return n;
  const limit = start + Math.min(n, p.max);
  const normal = start + Math.min(n, p.avg);
  const small = m.small;
  const large = m.large;
  let h = 0;
  let i = start + p.min;
  for (; i < normal; i++) {
    h = ((h << 1) + GEAR[buf[i]!]!) | 0;
    if ((h & small) === 0) return i + 1 - start;
  }
  for (; i < limit; i++) {
    h = ((h << 1) + GEAR[buf[i]!]!) | 0;
    if ((h & large) === 0) return i + 1 - start;
  }
  return limit - start;
}

/**
 * Splits a byte stream into content-defined chunks. Each yielded Buffer is a chunk of its own
 * (never reused), at most `p.max` bytes; only the last may be shorter than `p.min`.
 */
export async function* chunkStream(input: AsyncIterable<Uint8Array>, p: ChunkParams = DEFAULT_CHUNKING): AsyncGenerator<Buffer> {
  const m = masks(p.avg);
  let pending = Buffer.alloc(0);
  for await (const piece of input) {
    pending = pending.length === 0 ? Buffer.from(piece) : Buffer.concat([pending, piece]);
    let at = 0;
    // A cut is final only once `max` bytes (or the end) are in view.
    while (pending.length - at >= p.max) {
      const len = cutPoint(pending, at, pending.length, p, m);
      yield pending.subarray(at, at + len);
      at += len;
    }
    pending = pending.subarray(at);
  }
  let at = 0;
  while (at < pending.length) {
    const len = cutPoint(pending, at, pending.length, p, m);
    yield pending.subarray(at, at + len);
    at += len;
  }
}
