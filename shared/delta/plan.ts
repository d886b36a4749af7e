/**
 * The delta planner: which chunks of the new image a device already has in its running slot
 * (matched by their signed sha256), and which it must fetch, grouped into single HTTP ranges
 * of the bundle. Neighbouring chunks share a request; when more requests than allowed remain,
 * the closest ranges are merged (the bytes between them are fetched and dropped). The agent and
 * `ota-release delta-report` use this one planner, so the report is what the device downloads.
 */
import { CHUNK_HASH_BYTES, type ChunkIndex, type ChunkTable } from '../chunk-index.js';

/** Limits of a plan. */
export interface PlanOptions {
  /** The most range requests for the chunks (default 4096). */
  readonly maxRequests?: number;
  /** Ranges at most this many bytes apart are merged (default 0: only touching ones). */
  readonly mergeGapBytes?: number;
}

/** Defaults of PlanOptions. */
export const PLAN_DEFAULTS = { maxRequests: 4096, mergeGapBytes: 0 } as const;

/** One request: bundle bytes `[start, end)` carrying chunks `first` to `last` (inclusive) of the new index. */
export interface FetchRange {
  readonly start: number;
  readonly end: number;
  readonly first: number;
  readonly last: number;
}

/** Where each chunk of the new image comes from. */
export interface DeltaPlan {
  /** For chunk k of the new index: its offset in the running slot, or -1 to fetch it. */
  readonly localOffset: Float64Array;
  /** The range requests, in bundle order (which is image order). */
  readonly ranges: readonly FetchRange[];
  /** Image bytes taken from the running slot, and fetched. */
  readonly localBytes: number;
  readonly fetchedImageBytes: number;
  /** Bundle bytes the ranges carry (stored chunk bytes plus merged gaps). */
  readonly wireBytes: number;
}

/**
 * What the running slot holds, as a lookup by chunk hash (its first 16 bytes, as index v2
 * keeps; a kept v1 index's 32-byte hashes match on that prefix) and length → offset in the
 * slot. An open-addressing table of chunk numbers over the slot index's own columns: 8 to 16
 * bytes a chunk besides the index, instead of a Map of hex strings (about 200 bytes a chunk).
 */
export class LocalChunks {
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(private readonly t: ChunkTable) {
    let size = 16;
    while (size < t.length * 2) size *= 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (let k = 0; k < t.length; k++) {
      const at = k * t.hashBytes;
      let i = this.home(t.hashes, at, t.lengths[k]!);
      for (; this.slots[i]! >= 0; i = (i + 1) & this.mask) if (this.same(this.slots[i]!, t.hashes, at, t.lengths[k]!)) break;
      if (this.slots[i]! < 0) this.slots[i] = k;
    }
  }

  private home(hashes: Buffer, at: number, length: number): number {
    // Chunk hashes are sha256 prefixes: their first bytes are as good as any hash of them.
    return (hashes.readUInt32LE(at) ^ Math.imul(length, 0x9e3779b1)) & this.mask;
  }

  private same(k: number, hashes: Buffer, at: number, length: number): boolean {
    const t = this.t;
    const mine = k * t.hashBytes;
    return t.lengths[k] === length && t.hashes.compare(hashes, at, at + CHUNK_HASH_BYTES, mine, mine + CHUNK_HASH_BYTES) === 0;
  }

  /** The slot offset of a chunk of `length` bytes whose hash starts at `hashes[at]`, or -1. */
  find(hashes: Buffer, at: number, length: number): number {
    for (let i = this.home(hashes, at, length); this.slots[i]! >= 0; i = (i + 1) & this.mask) {
      const k = this.slots[i]!;
      if (this.same(k, hashes, at, length)) return this.t.offsets[k]!;
    }
    return -1;
  }
}

/** The running slot's chunks as a lookup table, from its index. */
export function localChunks(ix: ChunkIndex): LocalChunks {
  return new LocalChunks(ix.chunks);
}

/**
 * Where the planner learns which chunks are local: the running slot's table, or the
 * `localOffset` of an earlier plan of the same index (the agent keeps that array, 8 bytes a
 * chunk, instead of the slot's index and table, which it drops once the first plan is made).
 */
export type LocalSource = LocalChunks | Float64Array;

/** The local offset of chunk k of `ix`, if the running slot has it. */
export function findLocal(have: LocalChunks, ix: ChunkIndex, k: number): number {
  const t = ix.chunks;
  return have.find(t.hashes, k * t.hashBytes, t.lengths[k]!);
}

/**
 * Plans chunks `from` to the end of `ix` (a resumed install starts part-way), with the payload's
 * stored bytes starting at bundle offset `dataOffset`.
 */
export function planDelta(ix: ChunkIndex, have: LocalSource, dataOffset: number, opts: PlanOptions = {}, from = 0): DeltaPlan {
  if (have instanceof Float64Array && have.length !== ix.chunks.length) throw new RangeError(`a plan of ${have.length} chunks for an index of ${ix.chunks.length}`);
  const maxRequests = Math.max(1, opts.maxRequests ?? PLAN_DEFAULTS.maxRequests);
  const gap = Math.max(0, opts.mergeGapBytes ?? PLAN_DEFAULTS.mergeGapBytes);
  const localOffset = new Float64Array(ix.chunks.length).fill(-1);
  let localBytes = 0;
  let fetchedImageBytes = 0;
  let ranges: { start: number; end: number; first: number; last: number }[] = [];
  const t = ix.chunks;
  for (let k = from; k < t.length; k++) {
    const length = t.lengths[k]!;
    const at = have instanceof Float64Array ? have[k]! : findLocal(have, ix, k);
    if (at >= 0) {
      localOffset[k] = at;
      localBytes += length;
      continue;
    }
    fetchedImageBytes += length;
    const start = dataOffset + t.storedOffsets[k]!;
    const end = start + t.storedLengths[k]!;
    const prev = ranges[ranges.length - 1];
    if (prev && start - prev.end <= gap) {
      prev.end = end;
      prev.last = k;
    } else ranges.push({ start, end, first: k, last: k });
  }
  if (ranges.length > maxRequests) ranges = mergeClosest(ranges, maxRequests);
  const wireBytes = ranges.reduce((n, r) => n + (r.end - r.start), 0);
  return { localOffset, ranges, localBytes, fetchedImageBytes, wireBytes };
}

/** Merges the ranges separated by the smallest gaps until `max` remain. */
function mergeClosest(ranges: FetchRange[], max: number): { start: number; end: number; first: number; last: number }[] {
  const gaps = ranges.slice(1).map((r, i) => ({ i, gap: r.start - ranges[i]!.end }));
  gaps.sort((a, b) => a.gap - b.gap || a.i - b.i);
  const join = new Uint8Array(ranges.length);
  for (const g of gaps.slice(0, ranges.length - max)) join[g.i] = 1;
  const out: { start: number; end: number; first: number; last: number }[] = [];
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    const prev = out[out.length - 1];
    if (prev && join[i - 1]) {
      prev.end = r.end;
      prev.last = r.last;
    } else out.push({ ...r });
  }
  return out;
}
