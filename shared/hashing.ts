/** Streaming sha256 of files and byte streams, in large reads to keep up with the disk. */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Read size for bulk file streaming (large reads are several times faster than the 64 KiB default). */
export const CHUNK = 1024 * 1024;

/**
 * Read buffers kept for the next file: a walk that hashes file after file (a tree's read-back,
 * a module's sync of the running system) reads them all into the same two buffers instead of
 * two fresh 1 MiB ones per file, which piled up as garbage until V8's external-memory limit
 * started a collection (up to 30 MiB more RssAnon on the archive and module paths,
 * docs/PERFORMANCE.md §2). One pair is kept (2 MiB); a second walk running at the same time
 * gets its own pair, dropped after it.
 */
const spare: (readonly [Buffer, Buffer])[] = [];

function leaseBuffers(): readonly [Buffer, Buffer] {
  return spare.pop() ?? [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)];
}

function returnBuffers(bufs: readonly [Buffer, Buffer]): void {
  if (spare.length === 0) spare.push(bufs);
}

/**
 * Calls `fn` with successive chunks of a file (from `start` up to `end`), reading into two
 * reused buffers: the next read runs while `fn` works on the chunk before it (hashing and
 * reading overlap), memory stays flat and no garbage piles up between collections. `fn` must be
 * done with the chunk when it returns (or its promise settles); it must not keep a reference.
 */
export async function forEachChunk(path: string, fn: (chunk: Buffer) => unknown, start = 0, end = Infinity): Promise<number> {
  const fh = await open(path, 'r');
  const bufs = leaseBuffers();
  // A read settles to its byte count or its error, so one failing while `fn` runs is never an
  // unhandled rejection.
  const readAt = (k: 0 | 1, at: number): Promise<{ n: number; error?: unknown }> =>
    at >= end
      ? Promise.resolve({ n: 0 })
      : fh.read(bufs[k], 0, Math.min(CHUNK, end - at), at).then(
          (r) => ({ n: r.bytesRead }),
          (error: unknown) => ({ n: 0, error }),
        );
  let k: 0 | 1 = 0;
  let pos = start;
  let pending = readAt(k, pos);
  try {
    for (;;) {
      const { n, error } = await pending;
      if (error !== undefined) throw error;
      if (n === 0) break;
      const chunk = bufs[k].subarray(0, n);
      k = k === 0 ? 1 : 0;
      pending = readAt(k, pos + n);
      await fn(chunk);
      pos += n;
    }
  } finally {
    await pending;
    await fh.close();
    returnBuffers(bufs);
  }
  return pos - start;
}

/** sha256 (hex) and byte count of a file (or of bytes [start, end) of it), streamed. */
export async function hashFile(path: string, start = 0, end?: number): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const size = await forEachChunk(path, (c) => hash.update(c), start, end ?? Infinity);
  return { sha256: hash.digest('hex'), size };
}

/** sha256 (hex) of bytes in memory. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
