/**
 * Opens a bundle source as a byte stream: a local file (a USB stick) or an http(s) URL read
 * with got. Bytes are counted as they pass, for progress and for the durable offset, and a
 * known size caps what is read (a server cannot make the device read more than was signed).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import got from 'got';
import { OtaError, errorMessage, isOtaError } from '../shared/errors.js';
import { CHUNK } from '../shared/hashing.js';
import './errors.js';

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
}

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

async function openFile(source: string, offset: number, maxBytes?: number): Promise<OpenedSource> {
  const path = resolve(source);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (cause) {
    throw new OtaError('SOURCE_UNREADABLE', `bundle ${path}: cannot be opened (${errorMessage(cause)})`, { cause });
  }
  let read = 0;
  const wrap = (e: unknown): unknown =>
    isOtaError(e) ? e : new OtaError('SOURCE_UNREADABLE', `bundle ${path}: read failed (${errorMessage(e)})`, { cause: e });
  const stream = createReadStream(path, { highWaterMark: CHUNK, start: offset });
  const chunks = counted(stream as AsyncIterable<Buffer>, path, maxBytes, (n) => (read += n), wrap);
  return { name: path, chunks, total: size, bytesRead: () => read, close: () => stream.destroy() };
}

/** Skips the first `n` bytes of a body whose server ignored the Range header. */
async function* skipping(input: AsyncIterable<Buffer>, n: number): AsyncGenerator<Buffer> {
  let left = n;
  for await (const chunk of input) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

async function openUrl(url: string, offset: number, maxBytes?: number): Promise<OpenedSource> {
  const headers = offset > 0 ? { range: `bytes=${offset}-` } : {};
  const stream = got.stream(url, { headers, retry: { limit: 0 }, timeout: { connect: 30_000, response: 60_000 }, throwHttpErrors: false });
  const response = await new Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined> }>((res, rej) => {
    stream.once('response', res);
    stream.once('error', rej);
  }).catch((cause: unknown) => {
    throw new OtaError('DOWNLOAD_FAILED', `bundle ${url}: ${errorMessage(cause)}`, { cause });
  });
  if (response.statusCode >= 400) {
    stream.destroy();
    const code = response.statusCode >= 500 || response.statusCode === 429 ? 'DOWNLOAD_FAILED' : 'DOWNLOAD_REFUSED';
    throw new OtaError(code, `bundle ${url}: the server answered HTTP ${response.statusCode}`);
  }
  const length = Number(response.headers['content-length']);
  // 200 to a Range request: the whole body comes; drop what the slot already holds.
  const body = offset > 0 && response.statusCode !== 206 ? skipping(stream as AsyncIterable<Buffer>, offset) : (stream as AsyncIterable<Buffer>);
  const total = Number.isSafeInteger(length) ? (response.statusCode === 206 ? offset + length : length) : null;
  let read = 0;
  const wrap = (e: unknown): unknown => (isOtaError(e) ? e : new OtaError('DOWNLOAD_FAILED', `bundle ${url}: ${errorMessage(e)}`, { cause: e }));
  const chunks = counted(body, url, maxBytes, (n) => (read += n), wrap);
  return { name: url, chunks, total, bytesRead: () => read, close: () => stream.destroy() };
}

/** Opens `source` (path or URL) at `offset`; `maxBytes` caps the read when the size was announced. */
export function openSource(source: string, opts: SourceOptions = {}): Promise<OpenedSource> {
  const offset = opts.offset ?? 0;
  return isUrl(source) ? openUrl(source, offset, opts.maxBytes) : openFile(source, offset, opts.maxBytes);
}
