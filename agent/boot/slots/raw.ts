/**
 * A raw slot: a block device or an image file. An `image` payload is streamed into it byte for
 * byte (inflated on the way when gzip, and then hashed as written), fsynced, and read back and
 * hashed. For an uncompressed image that read-back is the payload's hash check: its digest must
 * equal the signed sha256 (the bundle reader leaves that check to us, deferHashCheck), so the
 * stream is hashed once, over what the storage holds. A block device is written with O_DIRECT
 * (DirectWriteBehind). Only the image's length is compared: the rest of the partition is not ours.
 *
 * The read-back runs during the write (readback.ts): each checkpoint's region is read back on a
 * worker thread as soon as its fsync has returned, while the next region streams in. The
 * digest of the whole read-back is kept in this process for the `installed` state, which
 * compares it; an agent that restarts in between reads the whole slot back again there.
 */
import { createHash } from 'node:crypto';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import type { PayloadEntry } from '../../../shared/bundle-reader.js';
import { OtaError, errorMessage, isOtaError } from '../../../shared/errors.js';
import { gunzipLimited, inflatesInPlace } from '../../../shared/inflate.js';
import type { SlotConfig } from '../../config/types.js';
import { slotWriter } from '../../../shared/write-behind.js';
import { durablyAsync } from '../../infra/durable.js';
import { reclaiming } from '../../infra/reclaim.js';
import { ReadBack, readBackWhole } from './readback.js';
import type { DurablePoint, SlotBackend, SlotDigest, WriteOptions, WriteResult } from './types.js';

/**
 * Read-backs done during a write in this process, by slot path: what `readBack` answers with
 * instead of reading the slot a second time. Taken (and forgotten) by the first `readBack`;
 * a new write of the slot forgets the one before.
 */
const readDuringWrite = new Map<string, { length: number; sha256: string }>();

/** A read-back done during another writer's write of a raw slot (a delta install's, agent/delta/apply.ts). */
export function noteReadDuringWrite(path: string, read: { length: number; sha256: string }): void {
  readDuringWrite.set(path, read);
}

function ioError(slot: SlotConfig, what: string, cause: unknown): OtaError {
  if (isOtaError(cause)) return cause;
  return new OtaError('SLOT_WRITE_FAILED', `slot ${slot.name} (${slot.path}): ${what} failed (${errorMessage(cause)})`, { cause });
}

/** The raw slot backend. */
export class RawSlot implements SlotBackend {
  constructor(readonly config: SlotConfig) {}

  /** Device size from sysfs, or the image file's size; undefined for an empty file. */
  async capacity(): Promise<number | undefined> {
    const st = await stat(this.config.path).catch(() => undefined);
    if (!st) return undefined;
    if (st.isBlockDevice()) {
      const major = Math.floor(st.rdev / 256) & 0xfff;
      const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      const sectors = await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8').catch(() => undefined);
      return sectors === undefined ? undefined : Number(sectors.trim()) * 512;
    }
    return st.size > 0 ? st.size : undefined;
  }

  async write(payloads: AsyncIterable<PayloadEntry>, opts: WriteOptions): Promise<WriteResult> {
    const slot = this.config;
    let fh: FileHandle;
    let direct: boolean;
    readDuringWrite.delete(slot.path);
    try {
      // r+: never create or truncate; a raw slot is a partition, or a file standing in for one.
      fh = await open(slot.path, 'r+');
      direct = (await fh.stat()).isBlockDevice();
    } catch (cause) {
      throw ioError(slot, 'opening', cause);
    }
    let digest: SlotDigest | undefined;
    let written = 0;
    const sync = async (at: number): Promise<void> => {
      await durablyAsync('slot-sync', `slot ${slot.name} at ${at}`, () => fh.sync()).catch((cause: unknown) => {
        throw ioError(slot, 'fsync', cause);
      });
    };
    try {
      for await (const p of payloads) {
        const m = p.module;
        if (m.type !== 'image') throw new OtaError('PAYLOAD_SLOT_MISMATCH', `slot ${slot.name}: payload "${m.name}" is an ${m.type}; a raw slot takes one image`);
        if (digest) throw new OtaError('PAYLOAD_SLOT_MISMATCH', `slot ${slot.name}: a raw slot takes exactly one image`);
        const gzip = m.compression === 'gzip';
        // An uncompressed image is read back from the slot and hashed on the worker anyway: that
        // hash, compared with the signed one below, is the payload's check, so the stream is not
        // hashed a second time on this thread.
        if (!gzip) p.deferHashCheck();
        // An uncompressed image lands byte for byte, so the slot's prefix is the payload's
        // prefix: a resumed read (p.startOffset > 0) continues writing where it stopped.
        let pos = gzip ? 0 : p.startOffset;
        let synced = pos;
        const hash = gzip ? createHash('sha256') : undefined;
        const point = (at: number): DurablePoint => ({ slotBytes: at, ...(gzip ? {} : { resume: { index: p.index, dataOffset: p.dataOffset, offset: at } }) });
        // zlib inflates into two fixed buffers (shared/inflate.ts); where Node lacks the handle
        // that takes, its output chunks are allocated one by one and get the collections.
        const inflated = gzip ? gunzipLimited(p.chunks, m.unpackedSize ?? 0, `payload "${m.name}"`) : undefined;
        const data = inflated ? (inflatesInPlace() ? inflated : reclaiming(inflated)) : p.chunks;
        // A checkpoint's fsync runs while the next bytes stream in: every byte below `at` was
        // written before the fsync began, so once it returns `at` is a durable resume point,
        // whatever was written meanwhile. Its point is recorded when it is awaited (at the next
        // checkpoint or the end), one checkpoint in flight at a time. Waiting for each fsync
        // instead stalled the download for the flush of every checkpointBytes of dirty pages.
        // `done` settles to the fsync's error, if any, so a failure is never an unhandled rejection.
        let flushing: { at: number; done: Promise<unknown> } | undefined;
        // Reads back each region once durable (a resumed write's prefix already is): handed over
        // when its fsync returns, not when the next checkpoint is reached, so that at the end
        // little is left to read. The worker starts with the first region, so its start-up
        // overlaps the download, not the start.
        const check = new ReadBack(slot.path, direct);
        check.upTo(synced);
        const settle = async (): Promise<void> => {
          if (!flushing) return;
          const f = flushing;
          flushing = undefined;
          const failed = await f.done;
          if (failed) throw failed;
          // Its region went to the read-back when the fsync returned (below).
          opts.onDurable?.(point(f.at));
        };
        // Copies each chunk into one of its two buffers: the source may reuse the chunk's memory
        // once it is hashed and handed over (bundle-source.ts reads a file into a ring of buffers);
        // O_DIRECT on a block device (slotWriter).
        const { writer: out, close: closeDirect } = await slotWriter(fh, slot.path, direct, pos, (at, cause) => ioError(slot, `writing at offset ${at}`, cause));
        try {
          for await (const chunk of data) {
            await out.add(chunk);
            // After the first byte, not before: the start-up is measured to it (npm run bench).
            if (written === 0) check.start();
            hash?.update(chunk);
            pos += chunk.length;
            written += chunk.length;
            if (pos - synced >= opts.checkpointBytes) {
              // Every byte below `pos` is written before its fsync begins.
              await out.drain();
              await settle();
              synced = pos;
              // The region is read back as soon as its fsync returns, while the download goes on.
              const at = pos;
              flushing = { at, done: sync(at).then(() => check.upTo(at)).then(() => undefined, (err: unknown) => err ?? new Error('fsync failed')) };
            }
          }
          await out.drain();
          await settle();
          // The chunks iteration ended without throwing: the reader matched the payload's signed
          // sha256 over every byte, so for a plain image that hash is what the slot must hold.
          digest = gzip ? { kind: 'raw', length: pos, sha256: hash!.digest('hex') } : { kind: 'raw', length: m.size, sha256: m.sha256 };
          await sync(pos);
          opts.onDurable?.(point(pos));
          check.upTo(pos);
          const read = await check.digest().catch((cause: unknown) => {
            throw ioError(slot, 'reading back', cause);
          });
          if (!gzip && (read.length !== m.size || read.sha256 !== m.sha256)) {
            // The reader left this check to us (deferHashCheck): the slot holds bytes that are
            // not the signed payload. Either the bundle's payload was altered or the storage did
            // not keep what was written; the slot stays disarmed either way.
            throw new OtaError(
              'PAYLOAD_HASH_MISMATCH',
              `payload "${m.name}": slot ${slot.name} (${slot.path}) reads back as sha256 ${read.sha256} over ${read.length} bytes, the manifest signed ${m.sha256} over ${m.size} (an altered payload, or storage that did not keep what was written)`,
            );
          }
          readDuringWrite.set(slot.path, read);
        } finally {
          // Never leave a write or an fsync behind unobserved (the handle closes after them).
          await out.abandon();
          await flushing?.done;
          await closeDirect();
          await check.close();
        }
      }
    } finally {
      await fh.close();
    }
    if (!digest) throw new OtaError('PAYLOAD_SLOT_MISMATCH', `slot ${slot.name}: the bundle holds no image`);
    return { digest, stats: { bytesWritten: written } };
  }

  async readBack(expected: SlotDigest): Promise<SlotDigest> {
    const length = expected.kind === 'raw' ? expected.length : 0;
    const early = readDuringWrite.get(this.config.path);
    readDuringWrite.delete(this.config.path);
    if (early && early.length === length) return { kind: 'raw', length, sha256: early.sha256 };
    const st = await stat(this.config.path).catch((cause: unknown) => {
      throw ioError(this.config, 'stat', cause);
    });
    // A block device's page cache would answer from memory what the flash may have dropped:
    // it is read with O_DIRECT.
    const sha256 = await readBackWhole(this.config.path, length, st.isBlockDevice()).catch((cause: unknown) => {
      throw ioError(this.config, 'reading back', cause);
    });
    return { kind: 'raw', length, sha256 };
  }
}
