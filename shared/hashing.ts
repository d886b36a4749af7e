/** Streaming sha256 of files and byte streams, in large reads to keep up with the disk. */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Read size for bulk file streaming (large reads are several times faster than the 64 KiB default). */
export const CHUNK = 1024 * 1024;

/**
 * Calls `fn` with successive chunks of a file (from `start` up to `end`), reading into ONE
 * reused buffer: memory stays flat and no garbage piles up between collections. `fn` must be
 * done with the chunk when it returns (or its promise settles); it must not keep a reference.
 */
export async function forEachChunk(path: string, fn: (chunk: Buffer) => unknown, start = 0, end = Infinity): Promise<number> {
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = start;
  try {
    while (pos < end) {
      const want = Math.min(CHUNK, end - pos);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) break;
      await fn(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
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
