/**
 * Writes a new image into a raw slot from a delta plan: chunks the running slot has are read
 * from it and hashed before they are written (a running slot that changed costs that chunk's
 * download, never a bad slot); the others come from the bundle's range requests, each inflated
 * and hashed against the signed index. Chunks are written in image order, so the fsynced prefix
 * of the slot is the journal: a checkpoint records the image offset (a chunk boundary) below
 * which every chunk is durable, and a restarted install continues from there, re-fetching at
 * most the chunks after it. The written image must hash to the index's image sha256.
 *
 * Memory and time as a full install's (raw.ts): adjacent reused chunks are read from the
 * running slot in runs of up to LOCAL_RUN bytes into two buffers (the next run read while this
 * one is hashed) and copied into the two buffers of the same write-behind a full install uses
 * (O_DIRECT on a block device); fetched chunks come lent (RangeReader.lend: two read buffers
 * for a file, one ring over a kept connection for HTTP) and a gzip image's are inflated into one
 * buffer (inflate.ts's RawInflater), so that nothing is allocated per chunk and nothing needs a
 * forced collection. A checkpoint's fsync runs while
 * the next chunks go on; each checkpoint's region is read back on the read-back worker as soon
 * as it is durable. That read-back is the whole image's check, off the main thread: its digest
 * must be the index's image sha256 before the slot can be armed, so the bytes written are not
 * hashed a second time here. The installed state finds the read-back done.
 */
import { performance } from 'node:perf_hooks';
import { open, type FileHandle } from 'node:fs/promises';
import { ByteSource } from '../../shared/byte-source.js';
import type { ChunkIndex } from '../../shared/chunk-index.js';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { decodeChunk, type ChunkBuffer } from '../../shared/index-check.js';
import { RawInflater } from '../../shared/inflate.js';
import { planDelta, type LocalSource, type PlanOptions } from '../../shared/delta/plan.js';
import type { RangeReader } from '../../shared/delta/range.js';
import { slotWriter } from '../../shared/write-behind.js';
import type { SlotConfig } from '../config/types.js';
import { durablyAsync } from '../infra/durable.js';
import { reclaimer } from '../infra/reclaim.js';
import { stopOptimizing } from '../infra/young-generation.js';
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

/**
 * Where a delta write's main thread waited or worked, in milliseconds, for the agent's log
 * (what to look at when a delta install is slower than a full one): waiting for reads of the
 * running slot, hashing its chunks, fetching and inflating new ones, waiting for the
 * write-behind, for checkpoint fsyncs, and for the read-back at the end. `runs` counts reads.
 */
export interface DeltaPhases {
  slotRead: number;
  hash: number;
  fetch: number;
  write: number;
  fsync: number;
  readBack: number;
  runs: number;
}

/** One log line of `p`, over `seconds` of the whole write. */
export function phasesLine(p: DeltaPhases, seconds: number): string {
  const s = (ms: number): string => (ms / 1000).toFixed(2);
  return `${seconds.toFixed(2)} s: slot reads ${s(p.slotRead)} s (${p.runs}), hashing ${s(p.hash)} s, fetching ${s(p.fetch)} s, waiting on writes ${s(p.write)} s, fsyncs ${s(p.fsync)} s, read-back ${s(p.readBack)} s`;
}

/** Bytes of reused chunks read from the running slot in one request (at least one chunk). */
export const LOCAL_RUN = 256 << 10;

/** A read of adjacent reused chunks `first`..`last` from the running slot, `length` bytes at slot offset `at`. */
interface LocalRun {
  readonly first: number;
  readonly last: number;
  readonly at: number;
  readonly buf: Buffer;
  /** Settles to the bytes read, or the read's error (never an unhandled rejection). */
  readonly done: Promise<{ n: number } | { error: unknown }>;
  n: number;
}

/** Runs the job; returns what the slot must read back as. */
export async function applyDelta(job: DeltaJob): Promise<{ digest: SlotDigest; stats: DeltaStats; phases: DeltaPhases }> {
  const phases: DeltaPhases = { slotRead: 0, hash: 0, fetch: 0, write: 0, fsync: 0, readBack: 0, runs: 0 };
  const since = (t0: number): number => performance.now() - t0;
  const { index: ix, src, target } = job;
  let first = chunkAt(ix, job.from);
  if (first < 0) first = 0;
  const t = ix.chunks;
  const from = first < t.length ? t.offsets[first]! : ix.imageSize;
  const plan = planDelta(ix, job.have, job.dataOffset, job.plan, first);
  const before = { requests: src.stats.requests, bytes: src.stats.bytes };
  const stats: DeltaStats = { bytesWritten: 0, localBytes: 0, fetchedBytes: 0, localMisses: 0, requests: 0, wireBytes: 0, resumedAt: from };

  let out: FileHandle;
  let old: FileHandle;
  let direct: boolean;
  try {
    out = await open(target.path, 'r+');
    direct = await out.stat().then((st) => st.isBlockDevice(), () => false);
  } catch (cause) {
    throw slotError(target, 'opening', cause);
  }
  try {
    old = await open(job.active.path, 'r');
  } catch (cause) {
    await out.close();
    throw new OtaError('DELTA_SLOT_UNREADABLE', `slot ${job.active.name} (${job.active.path}): cannot be opened (${errorMessage(cause)})`, { cause });
  }
  // The writer a full install uses (raw.ts): O_DIRECT on a block device where it can be.
  const { writer, close: closeDirect } = await slotWriter(out, target.path, direct, from, (at, cause) => slotError(target, `writing at offset ${at}`, cause));
  // The read-back is the whole image's check: the durable prefix first (a resumed install's),
  // then each region once its fsync returned; its digest must be the index's image sha256.
  const check = new ReadBack(target.path, direct);
  check.upTo(from);
  // A checkpoint's fsync runs while the next chunks are copied and fetched, one in flight, as
  // in a full install (raw.ts): every byte below `at` is written before it begins, so once it
  // returns `at` is durable. Its progress is recorded when it is awaited.
  let synced = from;
  let flushing: { at: number; done: Promise<unknown> } | undefined;
  const sync = (at: number): Promise<unknown> =>
    durablyAsync('slot-sync', `slot ${target.name} at ${at}`, () => out.sync()).then(
      () => undefined,
      (cause: unknown) => slotError(target, 'fsync', cause),
    );
  const settle = async (): Promise<void> => {
    if (!flushing) return;
    const f = flushing;
    flushing = undefined;
    const t0 = performance.now();
    const err = await f.done;
    phases.fsync += since(t0);
    if (err) throw err;
    job.onDurable(f.at);
    check.upTo(f.at);
  };
  const checkpoint = async (at: number): Promise<void> => {
    const t0 = performance.now();
    await writer.drain();
    phases.write += since(t0);
    await settle();
    synced = at;
    flushing = { at, done: sync(at) };
  };

  // Reused chunks are read in runs of adjacent ones (one request per LOCAL_RUN bytes, not one
  // per chunk), into two buffers: the next run is read while this one is hashed and copied into
  // the writer, which copies a chunk before `add` returns.
  const runBytes = Math.max(LOCAL_RUN, ix.params.max);
  const bufs = [Buffer.allocUnsafeSlow(runBytes), Buffer.allocUnsafeSlow(runBytes)] as const;
  let spare = 0;
  const readRun = (k: number): LocalRun => {
    const at = plan.localOffset[k]!;
    let end = at + t.lengths[k]!;
    let last = k;
    for (let j = k + 1; j < t.length && plan.localOffset[j] === end && end + t.lengths[j]! - at <= runBytes; j++) {
      end += t.lengths[j]!;
      last = j;
    }
    const buf = bufs[spare]!;
    spare = 1 - spare;
    phases.runs++;
    const done = old.read(buf, 0, end - at, at).then(
      (r) => ({ n: r.bytesRead }),
      (error: unknown) => ({ error }),
    );
    return { first: k, last, at, buf, done, n: -1 };
  };
  const nextLocal = (k: number): number => {
    while (k < t.length && plan.localOffset[k]! < 0) k++;
    return k;
  };
  let run: LocalRun | undefined;
  let ahead: LocalRun | undefined;
  const settleRun = async (r: LocalRun): Promise<void> => {
    const t0 = performance.now();
    const got = await r.done;
    phases.slotRead += since(t0);
    if ('error' in got) {
      const { error } = got;
      throw new OtaError('DELTA_SLOT_UNREADABLE', `slot ${job.active.name} (${job.active.path}): reading at ${r.at} failed (${errorMessage(error)})`, { cause: error });
    }
    r.n = got.n;
  };
  /** Chunk k from the running slot, if its bytes there hash as the signed index says. */
  const readLocal = async (k: number): Promise<Buffer | undefined> => {
    if (!run || k > run.last) {
      if (ahead && ahead.first === k) run = ahead;
      else {
        if (ahead) await ahead.done;
        run = readRun(k);
      }
      ahead = undefined;
      await settleRun(run);
      const n = nextLocal(run.last + 1);
      if (n < t.length) ahead = readRun(n);
    }
    const off = plan.localOffset[k]! - run.at;
    const length = t.lengths[k]!;
    if (off + length > run.n) return undefined;
    const buf = run.buf.subarray(off, off + length);
    const t0 = performance.now();
    const ok = t.hashMatches(k, buf);
    phases.hash += since(t0);
    return ok ? buf : undefined;
  };
  // A gzip image's chunks are inflated into one buffer, which the writer copies from before the
  // next: nothing is allocated per chunk where Node has zlib's handle (inflate.ts).
  const inflater = ix.storage === 'gzip' ? RawInflater.open() : undefined;
  const into: ChunkBuffer | undefined = inflater ? { inflater, out: Buffer.allocUnsafeSlow(ix.params.max + 1) } : undefined;
  const fetchOne = async (k: number): Promise<Buffer> => {
    const start = job.dataOffset + t.storedOffsets[k]!;
    const parts: Buffer[] = [];
    for await (const b of src.read(start, start + t.storedLengths[k]!)) parts.push(b);
    try {
      return decodeChunk(ix, k, Buffer.concat(parts), `bundle ${src.name}`, into);
    } catch (err) {
      throw chunkError(src, err);
    }
  };

  // A chunk whose stored bytes span two lent pieces of a range is gathered here, not into a
  // new buffer (ByteSource.read): the largest stored chunk fits.
  let maxStored = 0;
  for (let k = first; k < t.length; k++) maxStored = Math.max(maxStored, t.storedLengths[k]!);
  const gather = Buffer.allocUnsafeSlow(Math.max(1, maxStored));
  // A range reader that lends (file and HTTP) and zlib's handle leave nothing to collect; a
  // reader that cannot lend, or inflateRawSync where Node lacks the handle, makes a fresh
  // buffer outside the V8 heap per chunk: collected as they go (reclaim.ts).
  const reclaim = src.lend && (ix.storage !== 'gzip' || inflater) ? undefined : reclaimer();
  if (!reclaim) stopOptimizing();
  let r = 0;
  let range: { source: ByteSource; body: AsyncGenerator<Buffer> } | undefined;
  let read: { length: number; sha256: string };
  try {
    for (let k = first; k < t.length; k++) {
      const length = t.lengths[k]!;
      const storedLength = t.storedLengths[k]!;
      const rr = plan.ranges[r];
      let stored: Buffer | undefined;
      const t0 = performance.now();
      if (rr && k >= rr.first && k <= rr.last) {
        if (!range) {
          const body = (src.lend ? src.lend(rr.start, rr.end) : src.read(rr.start, rr.end))[Symbol.asyncIterator]() as AsyncGenerator<Buffer>;
          range = { source: new ByteSource({ [Symbol.asyncIterator]: () => body }, rr.start), body };
        }
        const at = job.dataOffset + t.storedOffsets[k]!;
        if (range.source.position < at) await range.source.skip(at - range.source.position, `bundle ${src.name}`);
        stored = await range.source.read(storedLength, gather);
        if (stored.length !== storedLength) {
          throw new OtaError('DELTA_RANGE_MISMATCH', `bundle ${src.name}: the range ${rr.start}-${rr.end - 1} ended before the chunk at image offset ${t.offsets[k]}`);
        }
        if (k === rr.last) {
          await range.body.return(undefined);
          range = undefined;
          r++;
        }
      }
      phases.fetch += since(t0);
      let data: Buffer | undefined;
      if (plan.localOffset[k]! >= 0) {
        data = await readLocal(k);
        if (data) stats.localBytes += length;
        else stats.localMisses++;
      }
      if (!data) {
        const t1 = performance.now();
        try {
          data = stored ? decodeChunk(ix, k, stored, `bundle ${src.name}`, into) : await fetchOne(k);
        } catch (err) {
          throw chunkError(src, err);
        }
        stats.fetchedBytes += length;
        phases.fetch += since(t1);
      }
      const t2 = performance.now();
      await writer.add(data);
      phases.write += since(t2);
      // Every chunk leaves garbage (its hash, promises); fetched ones also their buffers.
      reclaim?.(data.length + (stored?.length ?? 0));
      stats.bytesWritten += data.length;
      const end = t.offsets[k]! + length;
      if (end - synced >= job.checkpointBytes && end < ix.imageSize) await checkpoint(end);
    }
    // The last checkpoint, awaited at once: the whole image durable and queued for the read-back.
    await checkpoint(ix.imageSize);
    await settle();
    const t5 = performance.now();
    read = await check.digest().catch((cause: unknown) => {
      throw slotError(target, 'reading back', cause);
    });
    phases.readBack += since(t5);
  } finally {
    await range?.body.return(undefined);
    await ahead?.done;
    await writer.abandon();
    await flushing?.done;
    await closeDirect();
    await check.close();
    await out.close();
    await old.close();
    inflater?.close();
  }
  stats.requests = src.stats.requests - before.requests;
  stats.wireBytes = src.stats.bytes - before.bytes;
  // Every chunk hashed as the signed index says before it was written; the slot's read-back
  // (every byte, the durable prefix of a resumed install included) must be the signed image.
  if (read.length !== ix.imageSize || read.sha256 !== ix.imageSha256) {
    throw new OtaError('DELTA_IMAGE_MISMATCH', `slot ${target.name}: the assembled image reads back as sha256 ${read.sha256} over ${read.length} bytes, the index says ${ix.imageSha256} over ${ix.imageSize}`);
  }
  noteReadDuringWrite(target.path, read);
  return { digest: { kind: 'raw', length: ix.imageSize, sha256: ix.imageSha256 }, stats, phases };
}
