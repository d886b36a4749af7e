import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, deflateRawSync, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { OtaError } from '../../shared/errors.js';
import { FileRangeReader } from '../../shared/delta/range.js';
import { OUT, RawInflater, gunzipLimited, inflatesInPlace } from '../../shared/inflate.js';
import { tempDir } from '../helpers/cli.js';
import { lentPieces, otaFailure } from '../helpers/streams.js';

/** `lentPieces`, counting what was read and whether the consumer let go early. */
function lent(data: Buffer, piece: number): AsyncIterable<Buffer> & { read: () => number; returned: () => boolean } {
  let read = 0;
  let returned = false;
  async function* gen(): AsyncGenerator<Buffer> {
    try {
      yield* lentPieces(data, piece, (n) => (read += n));
    } finally {
      if (read < data.length) returned = true;
    }
  }
  const it = gen();
  return { [Symbol.asyncIterator]: () => it, read: () => read, returned: () => returned };
}

/** Inflates, copying each lent chunk. */
async function inflate(gz: Buffer, size: number, piece: number, fixed: boolean): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of gunzipLimited(lent(gz, piece), size, 'payload "rootfs"', fixed)) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

describe('inflatesInPlace', () => {
  it('holds on the Node the devices run (20), which exposes zlib handle', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(20);
    expect(inflatesInPlace()).toBe(true);
  });
});

describe.each([
  ['fixed buffers', true],
  ['stream', false],
])('gunzipLimited (%s)', (_name, fixed) => {
  const text = Buffer.from('otaab '.repeat(400_000)); // 2.4 MB, compresses 1000-fold
  const noise = randomBytes(3 * OUT + 12_345); // stored blocks, output as big as input

  it.each([
    ['compressible, 1 MiB pieces', text, 1 << 20],
    ['compressible, 7-byte pieces', text.subarray(0, 100_000), 7],
    ['random, 64 KiB pieces', noise, 65_536],
    ['random, 1 byte at a time', noise.subarray(0, 5000), 1],
    ['empty', Buffer.alloc(0), 1024],
  ])('inflates %s, lent input and all', async (_what, data, piece) => {
    const got = await inflate(gzipSync(data), data.length, piece, fixed);
    expect(got.equals(data)).toBe(true);
  });

  it('inflates members one after the other, and ignores zeros after the last', async () => {
    const a = randomBytes(300_000);
    const b = Buffer.from('second member '.repeat(5000));
    const gz = Buffer.concat([gzipSync(a), gzipSync(b), Buffer.alloc(1000)]);
    const want = gunzipSync(gz);
    expect(want.length).toBe(a.length + b.length);
    const got = await inflate(gz, want.length, 4096, fixed);
    expect(got.equals(want)).toBe(true);
    // The second member starting a piece of its own.
    const first = gzipSync(a).length;
    expect((await inflate(gz, want.length, first, fixed)).equals(want)).toBe(true);
  });

  it('reads the input to its end, padding included, so its hash is checked', async () => {
    const gz = Buffer.concat([gzipSync(text), Buffer.alloc(3 << 20)]);
    const src = lent(gz, 1 << 20);
    let n = 0;
    for await (const c of gunzipLimited(src, text.length, 'x', fixed)) n += c.length;
    expect(n).toBe(text.length);
    expect(src.read()).toBe(gz.length);
  });

  it('refuses data cut short, corrupt, or not gzip at all as PAYLOAD_CORRUPT', async () => {
    const gz = gzipSync(noise);
    const cut = await otaFailure(inflate(gz.subarray(0, gz.length - 100), noise.length, 65_536, fixed));
    expect(cut.code).toBe('PAYLOAD_CORRUPT');
    expect(cut.message).toContain('payload "rootfs": gzip data is corrupt (unexpected end of file)');
    const bad = Buffer.from(gzipSync(text));
    bad.fill(0x55, 20, 60);
    expect((await otaFailure(inflate(bad, text.length, 65_536, fixed))).code).toBe('PAYLOAD_CORRUPT');
    const plain = await otaFailure(inflate(text, text.length, 65_536, fixed));
    expect(plain.code).toBe('PAYLOAD_CORRUPT');
    expect(plain.message).toContain('incorrect header check');
  });

  it('refuses an image that inflates to less than declared', async () => {
    const e = await otaFailure(inflate(gzipSync(text), text.length + 1, 65_536, fixed));
    expect(e.code).toBe('PAYLOAD_CORRUPT');
    expect(e.message).toBe(`payload "rootfs": inflates to ${text.length} bytes, but its declared unpackedSize is ${text.length + 1}`);
  });

  it('stops a gzip bomb before yielding a byte past the declared size, and lets the input go', async () => {
    const bomb = gzipSync(Buffer.alloc(64 << 20)); // 64 MiB of zeros in 64 KiB
    const src = lent(bomb, 4096);
    let yielded = 0;
    const e = await otaFailure(
      (async () => {
        for await (const c of gunzipLimited(src, 1 << 20, 'payload "rootfs"', fixed)) yielded += c.length;
      })(),
    );
    expect(e.code).toBe('PAYLOAD_UNPACKED_TOO_LARGE');
    expect(yielded).toBeLessThanOrEqual(1 << 20);
    await expect.poll(() => src.returned()).toBe(true);
  });

  it("passes the input's own errors on: an OtaError as it is, anything else as PAYLOAD_CORRUPT naming it", async () => {
    const gz = gzipSync(noise);
    async function* failing(e: unknown): AsyncGenerator<Buffer> {
      yield gz.subarray(0, 50_000);
      throw e;
    }
    const ota = new OtaError('PAYLOAD_HASH_MISMATCH', 'payload "rootfs": sha256 differs');
    const drain = async (e: unknown): Promise<void> => {
      for await (const c of gunzipLimited(failing(e), noise.length, 'x', fixed)) void c;
    };
    expect(await otaFailure(drain(ota))).toBe(ota);
    const other = await otaFailure(drain(new Error('EIO: i/o error, read')));
    expect(other.code).toBe('PAYLOAD_CORRUPT');
    expect(other.message).toContain('EIO: i/o error, read');
  });

  it('lets the input go when the consumer stops early, without waiting for its next bytes', async () => {
    let returned = false;
    let release: () => void = () => undefined;
    async function* stalls(): AsyncGenerator<Buffer> {
      try {
        yield gzipSync(text).subarray(0, 2000);
        await new Promise<void>((r) => (release = r)); // a stalled link
      } finally {
        returned = true;
      }
    }
    for await (const c of gunzipLimited(stalls(), text.length, 'x', fixed)) {
      expect(c.length).toBeGreaterThan(0);
      break;
    }
    release();
    await expect.poll(() => returned).toBe(true);
  });
});

describe('gunzipLimited with fixed buffers', () => {
  it('hands out views of the same two buffers however long the image', async () => {
    const data = randomBytes(8 << 20);
    const seen = new Set<ArrayBuffer>();
    let n = 0;
    for await (const c of gunzipLimited(lent(gzipSync(data), 1 << 20), data.length, 'x', true)) {
      expect(c.equals(data.subarray(n, n + c.length))).toBe(true);
      n += c.length;
      seen.add(c.buffer as ArrayBuffer);
    }
    expect(n).toBe(data.length);
    expect(seen.size).toBe(2);
  });
});

describe('RawInflater (a delta\'s chunks into one buffer)', () => {
  // Segments as ota-release makes them (shared/chunk-build.ts): raw deflate, a full flush at the end.
  const segment = (b: Buffer): Buffer => deflateRawSync(b, { finishFlush: constants.Z_FULL_FLUSH });

  it('inflates segment after segment into the same buffer, as inflateRawSync does', () => {
    const r = RawInflater.open()!;
    const out = Buffer.alloc((64 << 10) + 1);
    try {
      for (const size of [0, 1, 100, 32 << 10, 64 << 10]) {
        const data = size % 2 ? randomBytes(size) : Buffer.alloc(size, size & 0xff);
        const seg = segment(data);
        const n = r.inflate(seg, out);
        expect(out.subarray(0, n)).toEqual(inflateRawSync(seg, { finishFlush: constants.Z_SYNC_FLUSH }));
        expect(n).toBe(size);
      }
    } finally {
      r.close();
    }
  });

  it('throws RangeError for a segment longer than the buffer less one byte, and goes on', () => {
    const r = RawInflater.open()!;
    const data = randomBytes(1000);
    expect(() => r.inflate(segment(data), Buffer.alloc(1000))).toThrow(RangeError);
    expect(r.inflate(segment(data), Buffer.alloc(1001))).toBe(1000);
    r.close();
  });

  it("throws zlib's error for a corrupt segment, and inflates the next with a fresh context", () => {
    const r = RawInflater.open()!;
    const out = Buffer.alloc(5000);
    const bad = segment(Buffer.alloc(4000, 7));
    bad[0] = 0xff; // block type 3: reserved
    expect(() => r.inflate(bad, out)).toThrow(/invalid block type/);
    const data = randomBytes(3000);
    expect(out.subarray(0, r.inflate(segment(data), out))).toEqual(data);
    r.close();
  });
});

describe('FileRangeReader.lend', () => {
  it('lends the bytes read() gives, in two buffers taking turns, and buffers of its own to a second range at once', async () => {
    const t = await tempDir();
    try {
      const file = join(t.dir, 'b.otab');
      const data = randomBytes((3 << 20) + 12345);
      await writeFile(file, data);
      const src = new FileRangeReader(file);
      for (const [a, b] of [
        [0, data.length],
        [5, 5],
        [100, 200],
        [1 << 20, (2 << 20) + 3],
        [data.length - 10, data.length + 100],
      ] as const) {
        const lent: Buffer[] = [];
        const memory = new Set<ArrayBufferLike>();
        for await (const c of src.lend(a, b)) {
          lent.push(Buffer.from(c));
          memory.add(c.buffer);
        }
        const read: Buffer[] = [];
        for await (const c of src.read(a, b)) read.push(c);
        // equals(), not toEqual: vitest compares a Buffer's bytes one by one, for seconds per MiB.
        expect(Buffer.concat(lent).equals(Buffer.concat(read))).toBe(true);
        expect(Buffer.concat(lent).equals(data.subarray(a, Math.min(b, data.length)))).toBe(true);
        expect(memory.size).toBeLessThanOrEqual(2);
      }
      // A range lent while another is out reads into its own buffers: the first's views hold.
      const outer = src.lend(0, 3 << 20)[Symbol.asyncIterator]();
      const first = (await outer.next()).value as Buffer;
      const copy = Buffer.from(first);
      const inner: Buffer[] = [];
      for await (const c of src.lend(10, (2 << 20) + 10)) inner.push(Buffer.from(c));
      expect(Buffer.concat(inner).equals(data.subarray(10, (2 << 20) + 10))).toBe(true);
      expect(first.equals(copy)).toBe(true);
      await outer.return(undefined);
      expect(src.stats.requests).toBe(12);
    } finally {
      await t.cleanup();
    }
  });
});
