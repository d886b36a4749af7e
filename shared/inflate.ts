/** Gzip decompression that stops the moment more than the declared size would come out. */
import { createGunzip } from 'node:zlib';
import { OtaError, errorMessage, isOtaError } from './errors.js';

/**
 * Yields the inflated bytes of a gzip stream; throws PAYLOAD_UNPACKED_TOO_LARGE before
 * yielding a byte past `unpackedSize`, and PAYLOAD_CORRUPT if it inflates to less.
 *
 * Each input chunk is written to zlib, and the next one asked for, only once zlib has taken
 * all of it in (the write's callback): a lent chunk (a file source reads into two buffers in
 * turn) is never read into again while zlib still holds it, so nothing is copied, and no more
 * than one input chunk waits in zlib. A copy per 1 MiB chunk used to be the gzip path's largest
 * garbage (docs/PERFORMANCE.md §2).
 */
export async function* gunzipLimited(chunks: AsyncIterable<Buffer>, unpackedSize: number, what: string): AsyncGenerator<Buffer> {
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  const input = chunks[Symbol.asyncIterator]();
  let sourceError: unknown;
  let stopped = false;
  const written = (c: Buffer): Promise<boolean> =>
    new Promise((resolve) => {
      gz.write(c, (err) => resolve(!err));
    });
  const feed = (async () => {
    let done = false;
    try {
      for (;;) {
        let r: IteratorResult<Buffer>;
        try {
          r = await input.next();
        } catch (e) {
          sourceError = e;
          gz.destroy(e as Error);
          done = true;
          return;
        }
        if (r.done) {
          done = true;
          gz.end();
          return;
        }
        // A failed write (corrupt data, or the inflater destroyed) is reported by the output side.
        if (stopped || !(await written(r.value))) return;
      }
    } finally {
      if (!done) await input.return?.(undefined).catch(() => undefined);
    }
  })();
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
    stopped = true;
    gz.destroy();
    // The feed is not awaited here: it may be waiting for the source's next bytes (a stalled
    // link); it ends on its own and closes the source.
  }
  await feed;
  if (sourceError !== undefined) throw sourceError;
  if (n !== unpackedSize) {
    throw new OtaError('PAYLOAD_CORRUPT', `${what}: inflates to ${n} bytes, but its declared unpackedSize is ${unpackedSize}`);
  }
}
