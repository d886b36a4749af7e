/**
 * Opens a bundle source as a byte stream: a local file (a USB stick) or an http(s) URL read
 * with got (download/http-source.ts: retries that resume with Range, stall timeout). Bytes
 * are counted as they pass, for progress and for the durable offset, and a known size caps
 * what is read (a server cannot make the device read more than was signed).
 */
import { createReadStream } from 'node:fs';
import { regularFileSize } from '../../shared/files.js';
import { resolve } from 'node:path';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { CHUNK } from '../../shared/hashing.js';
import { SERVER_DEFAULTS } from '../config/fields.js';
import { openHttpSource, type HttpSourceOptions } from '../download/http-source.js';
import { reclaimer } from './reclaim.js';

/** An opened source. */
export interface OpenedSource {
  /** What to call it in messages and store: an absolute path or the URL. */
  readonly name: string;
  readonly chunks: AsyncIterable<Buffer>;
  /** Size in bytes when known (file size, Content-Length). */
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
  // Frees the chunks already handed on as the stream goes (reclaim.ts).
  const reclaim = reclaimer();
  try {
    for await (const chunk of input) {
      n += chunk.length;
      if (max !== undefined && n > max) throw new OtaError('BUNDLE_TOO_LARGE', `bundle ${name}: more than the ${max} bytes announced`);
      onChunk(chunk.length);
      reclaim(chunk.length);
      yield chunk;
    }
  } catch (err) {
    throw wrapError(err);
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
  const stream = createReadStream(path, { highWaterMark: CHUNK, start: offset });
  const chunks = counted(stream as AsyncIterable<Buffer>, path, maxBytes, (n) => (read += n), wrap);
  return { name: path, chunks, total: size, bytesRead: () => read, close: () => stream.destroy() };
}

async function openUrl(url: string, offset: number, maxBytes: number | undefined, http: HttpDownload): Promise<OpenedSource> {
  const src = await openHttpSource(url, { ...http, offset });
  let read = 0;
  const wrap = (e: unknown): unknown => (isOtaError(e) ? e : new OtaError('DOWNLOAD_FAILED', `bundle ${url}: ${errorMessage(e)}`, { cause: e }));
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
