/**
 * Bundle ranges over HTTP for a delta install: one `Range: bytes=a-b` per request (what every
 * static origin and CDN serves), with the bundle's ETag as If-Range. The answer must be a 206
 * for exactly the bytes asked: a 200 (the whole bundle), another Content-Range or a longer body
 * is refused with its own code rather than interpreted. A connection that drops mid-range is
 * asked again from the first byte not received (retry.ts's policy, the transaction's retry
 * budget), so a cut costs no byte already received.
 *
 * The transport is the bundle download's (download/http-source.ts over download/http1.ts): the
 * socket is read into a fixed buffer and the bytes wait in one ring for all the install's
 * ranges, lent to the apply (`lend`), so a delta allocates nothing per chunk and needs no
 * forced collections. The ranges of an install go one after another over one kept connection
 * (HTTP/1.1 keep-alive, `KeepAlive`): over a 3G link a new connection, and TLS handshake, per
 * range would cost more round trips than the range itself.
 */
import { copied, type RangeReader } from '../../shared/delta/range.js';
import type { HttpDownload } from '../infra/bundle-source.js';
import { ByteRing, RING, openHttpSource } from '../download/http-source.js';
import { KeepAlive } from '../download/http1.js';

/** Ranges of the bundle at `url`. */
export class HttpRangeReader implements RangeReader {
  readonly stats = { requests: 0, bytes: 0 };
  private readonly keepAlive = new KeepAlive();
  /** The ring `lend` uses, lent to one range at a time. */
  private ring: ByteRing | undefined;
  private lending = false;

  constructor(
    readonly name: string,
    private readonly opts: HttpDownload,
  ) {}

  /** Bytes [start, end) in buffers of their own (copies of what `lend` lends). */
  read(start: number, end: number): AsyncGenerator<Buffer> {
    return copied(this.lend(start, end));
  }

  async *lend(start: number, end: number): AsyncGenerator<Buffer> {
    if (end <= start) return;
    // A second range lent while one is out (the apply fetching a chunk aside) gets a ring of
    // its own, of the range's size when that is less (a body longer than asked is refused
    // before it is kept).
    const own = this.lending;
    const ring = own ? new ByteRing(Math.min(end - start, RING)) : (this.ring ??= new ByteRing());
    if (!own) this.lending = true;
    try {
      const src = await openHttpSource(this.name, { ...this.opts, offset: start, end, keepAlive: this.keepAlive, ring, onRequest: () => this.stats.requests++ });
      try {
        for await (const c of src.chunks) {
          this.stats.bytes += c.length;
          yield c;
        }
      } finally {
        src.close();
      }
    } finally {
      if (!own) {
        ring.clear();
        this.lending = false;
      }
    }
  }

  /** Closes the kept connection. */
  close(): void {
    this.keepAlive.close();
  }
}
