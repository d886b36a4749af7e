/** Gzip decompression that stops the moment more than the declared size would come out. */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { OtaError, errorMessage, isOtaError } from './errors.js';

/** Each chunk copied into memory of its own. */
export async function* copies(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const c of chunks) yield Buffer.from(c);
}

/**
 * Yields the inflated bytes of a gzip stream; throws PAYLOAD_UNPACKED_TOO_LARGE before
 * yielding a byte past `unpackedSize`, and PAYLOAD_CORRUPT if it inflates to less.
 */
export async function* gunzipLimited(chunks: AsyncIterable<Buffer>, unpackedSize: number, what: string): AsyncGenerator<Buffer> {
  // zlib keeps an input chunk until it has inflated it, after the source may have read into
  // its memory again (a file source lends its chunks): it gets copies.
  const src = Readable.from(copies(chunks), { objectMode: false, highWaterMark: 1 });
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  let sourceError: unknown;
  src.on('error', (e) => {
    sourceError = e;
    gz.destroy(e);
  });
  src.pipe(gz);
  let n = 0;
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) {
      if (n + chunk.length > unpackedSize) {
        throw new OtaError('PAYLOAD_UNPACKED_TOO_LARGE', `${what}: inflates past its declared unpackedSize of ${unpackedSize} bytes`);
      }
      n += chunk.length;
      yield chunk;
    }
  } catch (err) {
    const e = sourceError ?? err;
    if (isOtaError(e)) throw e;
    throw new OtaError('PAYLOAD_CORRUPT', `${what}: gzip data is corrupt (${errorMessage(e)})`, { cause: e });
  } finally {
    src.destroy();
    gz.destroy();
  }
  if (sourceError !== undefined) throw sourceError;
  if (n !== unpackedSize) {
    throw new OtaError('PAYLOAD_CORRUPT', `${what}: inflates to ${n} bytes, but its declared unpackedSize is ${unpackedSize}`);
  }
}
