/**
 * Reading a bundle by byte ranges: what a delta install needs from the bundle's origin (one
 * range per request, as any static file server or CDN serves), with a count of requests and
 * bytes so that a report and the device agree on what crossed the wire.
 */
import { open } from 'node:fs/promises';
import { CHUNK } from '../hashing.js';

/** A source of bundle byte ranges. */
export interface RangeReader {
  /** What to call the bundle in messages. */
  readonly name: string;
  /** Bytes `[start, end)` of the bundle, in order; each call is one request. */
  read(start: number, end: number): AsyncIterable<Buffer>;
  /** Requests made and body bytes received so far. */
  readonly stats: { requests: number; bytes: number };
  /**
   * The same bytes as `read`, lent: each chunk is valid only until the next is asked for, and
   * the reader allocates nothing per chunk. Readers that cannot lend have no such method.
   */
  lend?(start: number, end: number): AsyncIterable<Buffer>;
  /** Lets go of what the reader keeps between ranges (a kept HTTP connection). */
  close?(): void;
}

/** The chunks of `lent` in buffers of their own: `read` for a reader that lends. */
export async function* copied(lent: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const c of lent) yield Buffer.from(c);
}

/** Ranges of a local bundle file (a USB stick, or `ota-release delta-report`). */
export class FileRangeReader implements RangeReader {
  readonly stats = { requests: 0, bytes: 0 };
  /** The two buffers `lend` reads into, taking turns; lent out to one range at a time. */
  private bufs: [Buffer, Buffer] | undefined;
  private lending = false;

  constructor(readonly name: string) {}

  read(start: number, end: number): AsyncGenerator<Buffer> {
    return copied(this.lend(start, end));
  }

  async *lend(start: number, end: number): AsyncGenerator<Buffer> {
    this.stats.requests++;
    if (end <= start) return;
    // A second range lent while one is out (a delta's apply fetching a chunk aside) gets
    // buffers of its own for its length.
    const own = this.lending;
    const size = Math.min(CHUNK, end - start);
    const bufs = own ? ([Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)] as const) : (this.bufs ??= [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)]);
    if (!own) this.lending = true;
    const fh = await open(this.name, 'r');
    try {
      let k = 0;
      for (let at = start; at < end; ) {
        const buf = bufs[k]!;
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - at), at);
        // The file ends early: the range is short; the caller sees fewer bytes than it asked.
        if (bytesRead === 0) return;
        this.stats.bytes += bytesRead;
        at += bytesRead;
        yield buf.subarray(0, bytesRead);
        k = 1 - k;
      }
    } finally {
      if (!own) this.lending = false;
      await fh.close();
    }
  }
}
