/**
 * The head of a bundle for a delta install: manifest, signature and chunk indexes, read with as
 * few range requests as the layout allows (for bundles written by `ota-release build`: two),
 * then the signature verified and each index checked against its signed hash, exactly as the
 * streaming reader does. Also finds where the image payload's bytes start.
 */
import { BundleReader } from '../bundle-reader.js';
import { OtaError, isOtaError } from '../errors.js';
import type { ModuleSpec } from '../manifest.js';
import type { Keyring } from '../signing.js';
import { padded } from '../tar-reader.js';
import { unpackIndex, type ChunkIndex } from '../chunk-index.js';
import { checkIndexMatchesModule } from '../index-check.js';
import type { RangeReader } from './range.js';

/** What the first request asks for: enough for a manifest, its signature and a few headers. */
export const HEAD_BYTES = 8 * 1024;
/** Headers of an entry (ustar; a pax or long-name header makes it longer, and costs a request). */
const HEADER = 512;
const MAX_HEAD_REQUESTS = 8;

/** The verified head of a bundle. */
export interface BundleHead {
  readonly reader: BundleReader;
  /** The bundle's first bytes as fetched (a full install continues after them). */
  readonly bytes: Buffer;
  /** The image payload with an index, and where its stored bytes start in the bundle. */
  readonly image?: { readonly module: ModuleSpec; readonly index: ChunkIndex; readonly dataOffset: number };
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

async function collectRange(src: RangeReader, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of src.read(start, end)) parts.push(c);
  return Buffer.concat(parts);
}

/**
 * Reads and verifies the head of the bundle behind `src`, of `size` bytes when known. Without
 * an indexed image in the manifest, `image` is undefined and only the first request was made.
 */
export async function readBundleHead(src: RangeReader, keyring: Keyring, size?: number): Promise<BundleHead> {
  const limit = size ?? Number.MAX_SAFE_INTEGER;
  let bytes = await collectRange(src, 0, Math.min(HEAD_BYTES, limit));
  for (let k = 1; ; k++) {
    let reader: BundleReader;
    try {
      reader = await BundleReader.open(once(bytes), { keyring, source: src.name });
    } catch (err) {
      // The manifest or signature goes on past what was fetched: fetch up to where they end.
      if (!isOtaError(err, 'BUNDLE_TRUNCATED') || bytes.length >= limit || k >= MAX_HEAD_REQUESTS) throw err;
      bytes = Buffer.concat([bytes, await collectRange(src, bytes.length, Math.min(bytes.length * 2, limit))]);
      continue;
    }
    const indexed = reader.manifest.modules.filter((m) => m.index);
    if (indexed.length === 0) return { reader, bytes };
    // Index entries follow the signature; then the first payload's header.
    const need = reader.bundle.payloadsOffset + indexed.reduce((n, m) => n + HEADER + padded(m.index!.size), 0) + HEADER;
    if (bytes.length < need && need <= limit) {
      bytes = Buffer.concat([bytes, await collectRange(src, bytes.length, need)]);
      reader = await BundleReader.open(once(bytes), { keyring, source: src.name });
    }
    try {
      const indexes = await reader.indexes();
      const first = await reader.payloads().next();
      if (first.done) throw new OtaError('ENTRY_MISSING', `bundle ${src.name}: no payload follows the indexes`);
      const { module, dataOffset } = first.value;
      const packed = indexes.get(module.name);
      if (module.type !== 'image' || !packed) return { reader, bytes };
      const index = unpackIndex(packed, `bundle ${src.name}: index/${module.name}`);
      checkIndexMatchesModule(index, module, `bundle ${src.name}: payload "${module.name}"`);
      return { reader, bytes, image: { module, index, dataOffset } };
    } catch (err) {
      if (!isOtaError(err, 'BUNDLE_TRUNCATED') || bytes.length >= limit || k >= MAX_HEAD_REQUESTS) throw err;
      // A longer header than a plain ustar one (pax, GNU long name): fetch a little more.
      bytes = Buffer.concat([bytes, await collectRange(src, bytes.length, Math.min(bytes.length + HEAD_BYTES, limit))]);
    }
  }
}
