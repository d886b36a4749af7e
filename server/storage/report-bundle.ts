/**
 * A stored bundle as a source for `delta-report` figures (shared/delta/report.ts): ranges and
 * whole reads through the bundle store, whichever its backend (a local directory or S3), so the
 * console's figures never need a local copy of an object-stored bundle.
 */
import type { Readable } from 'node:stream';
import type { RangeReader } from '../../shared/delta/range.js';
import type { ReportBundle } from '../../shared/delta/report.js';
import type { BundleStorage } from './bundle-store.js';

/** Byte ranges of a stored bundle, counted as a device's requests would be. */
class StoredRanges implements RangeReader {
  readonly stats = { requests: 0, bytes: 0 };

  constructor(
    private readonly storage: BundleStorage,
    private readonly sha256: string,
    readonly name: string,
  ) {}

  async *read(start: number, end: number): AsyncGenerator<Buffer> {
    this.stats.requests++;
    if (end <= start) return;
    for await (const c of await this.storage.read(this.sha256, start, end - 1)) {
      this.stats.bytes += (c as Buffer).length;
      yield c as Buffer;
    }
  }
}

/** The bundle `sha256` of `size` bytes in `storage`. */
export function storedBundle(storage: BundleStorage, sha256: string, size: number): ReportBundle {
  const name = `bundle ${sha256}`;
  return {
    name,
    size: async () => size,
    ranges: () => new StoredRanges(storage, sha256, name),
    stream: async (): Promise<Readable> => storage.read(sha256, 0, size - 1),
  };
}
