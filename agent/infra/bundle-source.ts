/**
 * Opens a bundle source as a byte stream: a local file (a USB stick) or an http(s) URL
 * (download/http-source.ts: retries that resume with Range, stall timeout; http1.ts reads the
 * socket into a fixed buffer). Bytes
 * are counted as they pass, for progress and for the durable offset, and a known size caps
 * what is read (a server cannot make the device read more than was signed).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { regularFileSize } from '../../shared/files.js';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { CHUNK } from '../../shared/hashing.js';
import { DIRECT_ALIGN, alignedBuffers } from '../../shared/write-behind.js';
import { SERVER_DEFAULTS } from '../config/fields.js';
import { openHttpSource, type HttpSourceOptions } from '../download/http-source.js';

/** An opened source. */
export interface OpenedSource {
  /** What to call it in messages and store: an absolute path or the URL. */
  readonly name: string;
  readonly chunks: AsyncIterable<Buffer>;
  /**
   * The bundle's bytes. A chunk of a file source is lent: its memory is read into again once
   * the consumer has asked for the next chunk, so a consumer that keeps bytes longer (a write
   * queue, zlib, tar-stream, a header spanning two chunks) copies them. An HTTP source's
   * chunks are lent the same way (views into the ring its socket's chunks are copied into).
   */
  readonly total: number | null;
  /** Bytes read so far. */
  bytesRead(): number;
  /** Stops reading and releases the file or connection (when the bundle is refused). */
  close(): void;
}

/** Where to start and how much to read at most. */
export interface SourceOptions {
  /** Bundle offset of the first byte to read (a resumed download). */
  readonly offset?: number;
  /** The most bytes to read from `offset` on. */
  readonly maxBytes?: number;
  /** For a URL: retries, stall timeout, the announced bundle, headers (defaults when absent). */
  readonly http?: HttpDownload;
}

/** The options of an HTTP download besides where it starts. */
export type HttpDownload = Omit<HttpSourceOptions, 'offset'>;

/** True when `source` is an http(s) URL rather than a path. */
export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

async function* counted(input: AsyncIterable<Buffer>, name: string, max: number | undefined, onChunk: (n: number) => void, wrapError: (e: unknown) => unknown): AsyncGenerator<Buffer> {
  let n = 0;
  try {
    for await (const chunk of input) {
      n += chunk.length;
      if (max !== undefined && n > max) throw new OtaError('BUNDLE_TOO_LARGE', `bundle ${name}: more than the ${max} bytes announced`);
      onChunk(chunk.length);
      yield chunk;
    }
  } catch (err) {
    throw wrapError(err);
  }
}

/** Reads of a local bundle in flight ahead of the chunk the consumer holds. */
export const READS_AHEAD = 3;

/**
 * A file's bytes from `start` on, read with O_DIRECT into a ring of `READS_AHEAD + 1`
 * page-aligned buffers, `READS_AHEAD` reads in flight while the consumer works on the chunk
 * before them. A chunk's memory is read into again once the consumer asks for the next one:
 * see OpenedSource.chunks. Nothing is allocated per chunk, so a long install leaves no garbage
 * for the collector to find (a stream's fresh 1 MiB chunk per read left up to 64 MiB of it,
 * docs/PERFORMANCE.md).
 *
 * Why O_DIRECT: a bundle is read once. Through the page cache each of its pages would be
 * allocated, filled and copied out, and would then push the running system's own pages out of
 * memory; read directly, the disk fills our buffers and the cache is left alone (an install
 * from a file into a loop device took 0.83 s instead of 1.00, docs/PERFORMANCE.md). Without the
 * kernel's read-ahead, the ring keeps the disk busy. Reads start at a 4 KiB boundary below
 * `start` and the bytes before it are skipped. A file system that refuses O_DIRECT (the open
 * fails with EINVAL: ramfs, ecryptfs) is read through the page cache the same way.
 */
async function* ringRead(path: string, start: number): AsyncGenerator<Buffer> {
  const bufs = alignedBuffers(READS_AHEAD + 1, CHUNK);
  const fh = await open(path, constants.O_RDONLY | constants.O_DIRECT).catch(() => open(path, 'r'));
  const base = start - (start % DIRECT_ALIGN);
  let skip = start - base;
  // Read i goes into buffer i % length, from base + i * CHUNK; the consumer takes them in order.
  let issued = 0;
  let taken = 0;
  // Each read settles to its byte count or its error: one failing while the consumer works is
  // never an unhandled rejection.
  const pending: Promise<{ n: number; error?: unknown }>[] = [];
  const issue = (): void => {
    const i = issued++;
    pending.push(fh.read(bufs[i % bufs.length]!, 0, CHUNK, base + i * CHUNK).then((r) => ({ n: r.bytesRead }), (error: unknown) => ({ n: 0, error })));
  };
  try {
    for (let i = 0; i < READS_AHEAD; i++) issue();
    for (;;) {
      const { n, error } = await pending.shift()!;
      if (error !== undefined) throw error;
      if (n <= skip) return;
      const chunk = bufs[taken++ % bufs.length]!.subarray(skip, n);
      skip = 0;
      // Into the buffer of the chunk before this one, which the consumer is done with.
      if (n === CHUNK) issue();
      yield chunk;
      if (n < CHUNK) return;
    }
  } finally {
    await Promise.all(pending);
    await fh.close();
  }
}

async function openFile(source: string, offset: number, maxBytes?: number): Promise<OpenedSource> {
  const path = resolve(source);
  const size = await regularFileSize(path).catch((cause: unknown) => {
    throw new OtaError('SOURCE_UNREADABLE', `bundle ${path}: cannot be opened (${errorMessage(cause)})`, { cause });
  });
  let read = 0;
  const wrap = (e: unknown): unknown =>
    isOtaError(e) ? e : new OtaError('SOURCE_UNREADABLE', `bundle ${path}: read failed (${errorMessage(e)})`, { cause: e });
  const chunks = counted(ringRead(path, offset), path, maxBytes, (n) => (read += n), wrap);
  return { name: path, chunks, total: size, bytesRead: () => read, close: () => void chunks.return(undefined).catch(() => undefined) };
}

async function openUrl(url: string, offset: number, maxBytes: number | undefined, http: HttpDownload): Promise<OpenedSource> {
  const src = await openHttpSource(url, { ...http, offset });
  let read = 0;
  const wrap = (e: unknown): unknown => (isOtaError(e) ? e : new OtaError('DOWNLOAD_FAILED', `bundle ${url}: ${errorMessage(e)}`, { cause: e }));
  // The socket is read into a fixed buffer (http1.ts): like a file, a download allocates
  // nothing per chunk, so it needs no collections (reclaim.ts).
  const chunks = counted(src.chunks, url, maxBytes, (n) => (read += n), wrap);
  return { name: url, chunks, total: src.total, bytesRead: () => read, close: () => src.close() };
}

/** Opens `source` (path or URL) at `offset`; `maxBytes` caps the read when the size was announced. */
export function openSource(source: string, opts: SourceOptions = {}): Promise<OpenedSource> {
  const offset = opts.offset ?? 0;
  if (!isUrl(source)) return openFile(source, offset, opts.maxBytes);
  const http = opts.http ?? { stallMs: SERVER_DEFAULTS.stallTimeoutSeconds * 1000, budget: { used: 0, limit: SERVER_DEFAULTS.downloadRetries } };
  return openUrl(source, offset, opts.maxBytes, http);
}
