/** Streaming sha256 of files and byte streams, in large reads to keep up with the disk. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Read size for bulk file streaming (large reads are several times faster than the 64 KiB default). */
export const CHUNK = 1024 * 1024;

/** sha256 (hex) and byte count of a file, streamed. */
export async function hashFile(path: string, start = 0, end?: number): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const opts = end === undefined ? { highWaterMark: CHUNK, start } : { highWaterMark: CHUNK, start, end: end - 1 };
  if (end !== undefined && end <= start) return { sha256: hash.digest('hex'), size: 0 };
  for await (const chunk of createReadStream(path, opts)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** sha256 (hex) of bytes in memory. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
