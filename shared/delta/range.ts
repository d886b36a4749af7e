/**
 * Reading a bundle by byte ranges: what a delta install needs from the bundle's origin (one
 * range per request, as any static file server or CDN serves), with a count of requests and
 * bytes so that a report and the device agree on what crossed the wire.
 */
import { createReadStream } from 'node:fs';
import { CHUNK } from '../hashing.js';

/** A source of bundle byte ranges. */
export interface RangeReader {
  /** What to call the bundle in messages. */
  readonly name: string;
  /** Bytes `[start, end)` of the bundle, in order; each call is one request. */
  read(start: number, end: number): AsyncIterable<Buffer>;
  /** Requests made and body bytes received so far. */
  readonly stats: { requests: number; bytes: number };
}

/** Ranges of a local bundle file (a USB stick, or `ota-release delta-report`). */
export class FileRangeReader implements RangeReader {
  readonly stats = { requests: 0, bytes: 0 };

  constructor(readonly name: string) {}

  async *read(start: number, end: number): AsyncGenerator<Buffer> {
    this.stats.requests++;
    if (end <= start) return;
    for await (const c of createReadStream(this.name, { start, end: end - 1, highWaterMark: CHUNK })) {
      this.stats.bytes += (c as Buffer).length;
      yield c as Buffer;
    }
  }
}
