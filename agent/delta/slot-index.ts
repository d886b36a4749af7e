/**
 * The chunk index of each slot's image, kept in `<dataDir>/delta/`: the index of a bundle being
 * installed is stored as `tx-<id>.idx` while it downloads and becomes `slot-<X>.idx` when the
 * transaction commits, so the next delta install knows the running slot's chunks without
 * reading it. A slot without one (installed before delta existed, or by a resumed full
 * download) is chunked once, and that index kept. An index here is only a hint: every chunk
 * taken from the running slot is hashed against the new bundle's signed index before use.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { packIndex, unpackIndex, type ChunkIndex } from '../../shared/chunk-index.js';
import { errorMessage } from '../../shared/errors.js';
import { fsyncPath } from '../../shared/fsync.js';
import { CHUNK } from '../../shared/hashing.js';
import { indexOfStream } from '../../shared/delta/local-index.js';
import { DEFAULT_CHUNKING, sameChunking, type ChunkParams } from '../../shared/chunker.js';
import type { SlotConfig, SlotName } from '../config/types.js';
import { RawSlot } from '../boot/slots/raw.js';

const dirOf = (dataDir: string): string => join(dataDir, 'delta');

async function writeDurably(dir: string, name: string, bytes: Buffer): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${name}.tmp`);
  await writeFile(tmp, bytes);
  const fh = await open(tmp, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncPath(dir);
}

/** Stores the (verified, packed) index of the image transaction `txId` is installing. */
export async function savePendingIndex(dataDir: string, txId: string, packed: Buffer): Promise<void> {
  await writeDurably(dirOf(dataDir), `tx-${txId}.idx`, packed);
}

/** The slot is about to be overwritten: its kept index no longer describes it. */
export async function forgetSlotIndex(dataDir: string, slot: SlotName): Promise<void> {
  await rm(join(dirOf(dataDir), `slot-${slot}.idx`), { force: true });
}

/**
 * At commit: the transaction's index becomes the slot's; stale pending indexes go. Idempotent:
 * run again after a crash, it finds the rename done (the slot's old index was dropped when the
 * download began, so a slot-X.idx present now is this transaction's).
 */
export async function keepSlotIndex(dataDir: string, txId: string, slot: SlotName): Promise<void> {
  const dir = dirOf(dataDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  if (names.includes(`tx-${txId}.idx`)) await rename(join(dir, `tx-${txId}.idx`), join(dir, `slot-${slot}.idx`));
  for (const n of names) if (n.startsWith('tx-') && n !== `tx-${txId}.idx`) await rm(join(dir, n), { force: true });
  await fsyncPath(dir).catch(() => undefined);
}

/** The kept index of `slot`, if there is a readable one. */
export async function loadSlotIndex(dataDir: string, slot: SlotName, log: (line: string) => void): Promise<ChunkIndex | undefined> {
  const path = join(dirOf(dataDir), `slot-${slot}.idx`);
  let packed: Buffer;
  try {
    packed = await readFile(path);
  } catch {
    return undefined;
  }
  try {
    return unpackIndex(packed, path);
  } catch (err) {
    log(`delta: ignoring the kept index ${path} (${errorMessage(err)})`);
    return undefined;
  }
}

/**
 * The index of what the running slot holds, cut with the new bundle's chunk sizes `params`:
 * the kept one when its sizes are those, else the slot chunked now (its whole capacity, one
 * read) and kept for next time. Chunks of other sizes would match nothing, so a bundle built
 * with new sizes (the default went from 64 to 32 KiB) costs its first device one such read.
 */
export async function runningSlotIndex(dataDir: string, active: SlotConfig, log: (line: string) => void, params: ChunkParams = DEFAULT_CHUNKING): Promise<ChunkIndex | undefined> {
  const kept = await loadSlotIndex(dataDir, active.name, log);
  if (kept && sameChunking(kept.params, params)) return kept;
  const size = await new RawSlot(active).capacity();
  if (!size) return undefined;
  const t0 = Date.now();
  const ix = await indexOfStream(createReadStream(active.path, { start: 0, end: size - 1, highWaterMark: CHUNK }) as AsyncIterable<Buffer>, params);
  const why = kept ? `kept a chunk index of ${kept.params.avg >> 10} KiB chunks, the bundle uses ${params.avg >> 10} KiB` : 'had no kept chunk index';
  log(`delta: slot ${active.name} ${why}; chunked its ${size} bytes in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await writeDurably(dirOf(dataDir), `slot-${active.name}.idx`, packIndex(ix)).catch((err: unknown) => log(`delta: could not keep the index (${errorMessage(err)})`));
  return ix;
}
