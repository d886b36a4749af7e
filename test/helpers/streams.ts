/** Test helpers for byte streams and the errors they end in. */
import { expect } from 'vitest';
import { OtaError } from '../../shared/errors.js';

/**
 * `data` in pieces of `piece` bytes, lent as a file source lends them (agent/infra/bundle-source.ts):
 * read into two buffers in turn, so a piece is overwritten once the one after the next is asked
 * for. A consumer that keeps a piece too long sees 0xee where its bytes were.
 */
export async function* lentPieces(data: Buffer, piece: number, onRead?: (n: number) => void): AsyncGenerator<Buffer> {
  const bufs = [Buffer.alloc(piece), Buffer.alloc(piece)];
  let k = 0;
  for (let at = 0; at < data.length; at += piece) {
    const n = data.copy(bufs[k]!, 0, at, at + piece);
    onRead?.(n);
    const chunk = bufs[k]!.subarray(0, n);
    k = 1 - k;
    await new Promise((r) => setImmediate(r));
    yield chunk;
    bufs[1 - k]!.fill(0xee);
  }
}

/** The OtaError `p` rejects with (fails the test if it resolves or rejects with anything else). */
export async function otaFailure(p: Promise<unknown>): Promise<OtaError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(OtaError);
  return e as OtaError;
}
