// ByteSource's exact reads over lent pieces: a read inside one piece is a view of it; one that
// spans pieces is gathered into the caller's scratch buffer when it is large enough (nothing
// allocated), else into a new buffer; a short input gives what there was.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ByteSource } from '../../shared/byte-source.js';
import { lentPieces } from '../helpers/streams.js';

describe('ByteSource.read', () => {
  it('gathers a read spanning lent pieces into the scratch buffer, and into a new one when it is too small', async () => {
    const data = randomBytes(10_000);
    const scratch = Buffer.alloc(700);
    const src = new ByteSource(lentPieces(data, 333));
    const sizes = [100, 600, 700, 1, 333, 701, 5000];
    let at = 0;
    for (const n of sizes) {
      const got = await src.read(n, scratch);
      expect(got.equals(data.subarray(at, at + n))).toBe(true);
      const spans = Math.floor(at / 333) !== Math.floor((at + n - 1) / 333);
      // A spanning read lands in the scratch when it fits; one inside a piece is a view of it.
      if (spans && n <= scratch.length) expect(got.buffer).toBe(scratch.buffer);
      else expect(got.buffer).not.toBe(scratch.buffer);
      at += n;
    }
    const rest = await src.read(data.length, scratch);
    expect(rest.equals(data.subarray(at))).toBe(true);
    expect(await src.atEnd()).toBe(true);
  });
});
