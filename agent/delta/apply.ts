/**
 * Writes a new image into a raw slot from a delta plan: chunks the running slot has are read
 * from it and hashed before they are written (a running slot that changed costs that chunk's
 * download, never a bad slot); the others come from the bundle's range requests, each inflated
 * and hashed against the signed index. Chunks are written in image order, so the fsynced prefix
 * of the slot is the journal: a checkpoint records the image offset (a chunk boundary) below
 * which every chunk is durable, and a restarted install continues from there, re-fetching at
 * most the chunks after it. The written image must hash to the index's image sha256.
 *
 * Memory and time as a full install's (raw.ts): local chunks are read into one scratch buffer
 * and copied into the two buffers of a CopyingWriteBehind, so only fetched chunks allocate; each
 * checkpoint's region is read back on the read-back worker as soon as it is durable, so the
 * installed state finds the read-back done instead of reading the whole slot again.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { ByteSource } from '../../shared/byte-source.js';
import type { ChunkIndex } from '../../shared/chunk-index.js';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { forEachChunk } from '../../shared/hashing.js';
import { decodeChunk } from '../../shared/index-check.js';
import { planDelta, type LocalSource, type PlanOptions } from '../../shared/delta/plan.js';
import type { RangeReader } from '../../shared/delta/range.js';
import { CopyingWriteBehind } from '../../shared/write-behind.js';
import type { SlotConfig } from '../config/types.js';
import { durablyAsync } from '../infra/durable.js';
import { reclaimer } from '../infra/reclaim.js';
import type { SlotDigest } from '../boot/slots/types.js';
import { noteReadDuringWrite } from '../boot/slots/raw.js';
import { ReadBack } from '../boot/slots/readback.js';

/** One delta write. */
export interface DeltaJob {
  readonly target: SlotConfig;
  readonly active: SlotConfig;
  readonly index: ChunkIndex;
  readonly have: LocalSource;
  /** Bundle offset of the image payload's first stored byte. */
  readonly dataOffset: number;
  readonly src: RangeReader;
  readonly plan: PlanOptions;
  /** Image offset up to which the slot is already durable (a chunk boundary; 0 for a fresh start). */
  readonly from: number;
  readonly checkpointBytes: number;
  /** Every chunk below `offset` is fsynced in the slot. */
  readonly onDurable: (offset: number) => void;
}

/** Counters of a delta write, for the history and the bench. */
export interface DeltaStats {
  bytesWritten: number;
  localBytes: number;
  fetchedBytes: number;
  /** Chunks the plan took from the running slot but whose bytes there no longer hashed. */
  localMisses: number;
  requests: number;
  wireBytes: number;
  resumedAt: number;
}

function slotError(slot: SlotConfig, what: string, cause: unknown): OtaError {
  if (isOtaError(cause)) return cause;
  return new OtaError('SLOT_WRITE_FAILED', `slot ${slot.name} (${slot.path}): ${what} failed (${errorMessage(cause)})`, { cause });
}

function chunkError(src: RangeReader, err: unknown): unknown {
  if (!isOtaError(err, 'INDEX_CHUNK_MISMATCH')) return err;
  return new OtaError('DELTA_CHUNK_HASH_MISMATCH', `bundle ${src.name}: ${err.message}`, { cause: err });
}

/** The chunk that starts at image offset `at`, by binary search; -1 if none does. */
function chunkAt(ix: ChunkIndex, at: number): number {
  let lo = 0;
  let hi = ix.chunks.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const o = ix.chunks.offsets[mid]!;
    if (o === at) return mid;
    if (o < at) lo = mid + 1;
    else hi = mid - 1;
  }
  return at === ix.imageSize ? ix.chunks.length : -1;
}

/** Runs the job; returns what the slot must read back as. */
export async function applyDelta(job: DeltaJob): Promise<{ digest: SlotDigest; stats: DeltaStats }> {
  const { index: ix, src, target } = job;
  let first = chunkAt(ix, job.from);
  if (first < 0) first = 0;
  const t = ix.chunks;
  const from = first < t.length ? t.offsets[first]! : ix.imageSize;
  const image = createHash('sha256');
  // The durable prefix is hashed again from the slot, so the image hash covers every byte.
  if (from > 0) await forEachChunk(target.path, (b) => image.update(b), 0, from);
  const plan = planDelta(ix, job.have, job.dataOffset, job.plan, first);
  const before = { requests: src.stats.requests, bytes: src.stats.bytes };
  const stats: DeltaStats = { bytesWritten: 0, localBytes: 0, fetchedBytes: 0, localMisses: 0, requests: 0, wireBytes: 0, resumedAt: from };

  let out: FileHandle;
  let old: FileHandle;
  try {
    out = await open(target.path, 'r+');
  } catch (cause) {
    throw slotError(target, 'opening', cause);
  }
  try {
    old = await open(job.active.path, 'r');
  } catch (cause) {
    await out.close();
    throw new OtaError('DELTA_SLOT_UNREADABLE', `slot ${job.active.name} (${job.active.path}): cannot be opened (${errorMessage(cause)})`, { cause });
  }
  const writer = new CopyingWriteBehind(out, from, (at, cause) => slotError(target, `writing at offset ${at}`, cause));
  // The durable prefix first (a resumed install's), then each region once its fsync returned.
  const direct = await out.stat().then((st) => st.isBlockDevice(), () => false);
  const check = new ReadBack(target.path, direct);
  check.upTo(from);
  let synced = from;
  const checkpoint = async (at: number): Promise<void> => {
    await writer.drain();
    await durablyAsync('slot-sync', `slot ${target.name} at ${at}`, () => out.sync()).catch((cause: unknown) => {
      throw slotError(target, 'fsync', cause);
    });
    synced = at;
    job.onDurable(at);
    check.upTo(at);
  };

  // Local chunks go through one buffer: the writer copies a chunk before `add` returns.
  const scratch = Buffer.allocUnsafeSlow(ix.params.max);
  const readLocal = async (k: number, at: number): Promise<Buffer | undefined> => {
    const length = t.lengths[k]!;
    const buf = scratch.subarray(0, length);
    let got;
    try {
      got = await old.read(buf, 0, length, at);
    } catch (cause) {
      throw new OtaError('DELTA_SLOT_UNREADABLE', `slot ${job.active.name} (${job.active.path}): reading ${length} bytes at ${at} failed (${errorMessage(cause)})`, { cause });
    }
    if (got.bytesRead !== length || !t.hashMatches(k, buf)) return undefined;
    return buf;
  };
  const fetchOne = async (k: number): Promise<Buffer> => {
    const start = job.dataOffset + t.storedOffsets[k]!;
    const parts: Buffer[] = [];
    for await (const b of src.read(start, start + t.storedLengths[k]!)) parts.push(b);
    try {
      return decodeChunk(ix, k, Buffer.concat(parts), `bundle ${src.name}`);
    } catch (err) {
      throw chunkError(src, err);
    }
  };

  // Chunks are fresh buffers outside the V8 heap: collect them as they go (reclaim.ts).
  const reclaim = reclaimer();
  let r = 0;
  let range: { source: ByteSource; body: AsyncGenerator<Buffer> } | undefined;
  try {
    for (let k = first; k < t.length; k++) {
      const length = t.lengths[k]!;
      const storedLength = t.storedLengths[k]!;
      const rr = plan.ranges[r];
      let stored: Buffer | undefined;
      if (rr && k >= rr.first && k <= rr.last) {
        if (!range) {
          const body = src.read(rr.start, rr.end)[Symbol.asyncIterator]() as AsyncGenerator<Buffer>;
          range = { source: new ByteSource({ [Symbol.asyncIterator]: () => body }, rr.start), body };
        }
        const at = job.dataOffset + t.storedOffsets[k]!;
        if (range.source.position < at) await range.source.skip(at - range.source.position, `bundle ${src.name}`);
        stored = await range.source.read(storedLength);
        if (stored.length !== storedLength) {
          throw new OtaError('DELTA_RANGE_MISMATCH', `bundle ${src.name}: the range ${rr.start}-${rr.end - 1} ended before the chunk at image offset ${t.offsets[k]}`);
        }
        if (k === rr.last) {
          await range.body.return(undefined);
          range = undefined;
          r++;
        }
      }
      let data: Buffer | undefined;
      const local = plan.localOffset[k]!;
      if (local >= 0) {
        data = await readLocal(k, local);
        if (data) stats.localBytes += length;
        else stats.localMisses++;
      }
      if (!data) {
        try {
          data = stored ? decodeChunk(ix, k, stored, `bundle ${src.name}`) : await fetchOne(k);
        } catch (err) {
          throw chunkError(src, err);
        }
        stats.fetchedBytes += length;
      }
      image.update(data);
      await writer.add(data);
      stats.bytesWritten += data.length;
      // Every chunk leaves garbage (its hash, promises); fetched ones also their buffers.
      reclaim(data.length + (stored?.length ?? 0));
      const end = t.offsets[k]! + length;
      if (end - synced >= job.checkpointBytes && end < ix.imageSize) await checkpoint(end);
    }
    await checkpoint(ix.imageSize);
    const read = await check.digest().catch((cause: unknown) => {
      throw slotError(target, 'reading back', cause);
    });
    noteReadDuringWrite(target.path, read);
  } finally {
    await range?.body.return(undefined);
    await writer.abandon();
    await check.close();
    await out.close();
    await old.close();
  }
  stats.requests = src.stats.requests - before.requests;
  stats.wireBytes = src.stats.bytes - before.bytes;
  const digest = image.digest('hex');
  if (digest !== ix.imageSha256) {
    throw new OtaError('DELTA_IMAGE_MISMATCH', `slot ${target.name}: the assembled image has sha256 ${digest}, the index says ${ix.imageSha256}`);
  }
  return { digest: { kind: 'raw', length: ix.imageSize, sha256: ix.imageSha256 }, stats };
}
