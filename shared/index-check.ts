/**
 * Checks a chunk index against the payload it describes: the index must agree with the signed
 * module (sizes, storage, hash of a raw image), and, as the stored bytes stream past, every
 * chunk's stored range must decode on its own to bytes of the signed chunk hash. Run by
 * `ota-release verify` and the server's upload, so a bundle whose index would send devices
 * after bytes that do not hash is refused before any device sees it.
 */
import { createHash } from 'node:crypto';
import { constants, inflateRawSync } from 'node:zlib';
import type { ChunkIndex } from './chunk-index.js';
import { OtaError } from './errors.js';
import type { RawInflater } from './inflate.js';
import type { ModuleSpec } from './manifest.js';

/**
 * Where decodeChunk inflates a gzip image's chunk instead of a fresh buffer: `out` holds more
 * than the largest chunk (the byte past one tells a chunk too long); the chunk returned is a
 * view of it, valid until the next call.
 */
export interface ChunkBuffer {
  readonly inflater: RawInflater;
  readonly out: Buffer;
}

/** The index must describe exactly the payload the manifest signed. */
export function checkIndexMatchesModule(ix: ChunkIndex, m: ModuleSpec, what: string): void {
  const gzip = m.compression === 'gzip';
  const imageSize = gzip ? m.unpackedSize : m.size;
  const ok =
    ix.storage === (gzip ? 'gzip' : 'raw') && ix.storedSize === m.size && ix.imageSize === imageSize && (gzip || ix.imageSha256 === m.sha256);
  if (!ok) {
    throw new OtaError('INDEX_MALFORMED', `${what}: the index describes a ${ix.storage} image of ${ix.imageSize} bytes stored in ${ix.storedSize}, not this payload`);
  }
}

/**
 * Decodes chunk k's stored bytes and checks them against its signed hash; returns the chunk (a
 * view of `into.out` when given and the image is gzip, else a buffer of its own or `stored`).
 */
export function decodeChunk(ix: ChunkIndex, k: number, stored: Buffer, what: string, into?: ChunkBuffer): Buffer {
  const offset = ix.chunks.offsets[k]!;
  const length = ix.chunks.lengths[k]!;
  let data = stored;
  if (ix.storage === 'gzip') {
    try {
      if (into && into.out.length > length) data = into.out.subarray(0, into.inflater.inflate(stored, into.out.subarray(0, length + 1)));
      else data = inflateRawSync(stored, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: length });
    } catch (cause) {
      throw new OtaError('INDEX_CHUNK_MISMATCH', `${what}: the chunk at image offset ${offset} does not inflate to ${length} bytes`, { cause });
    }
  }
  if (data.length !== length || !ix.chunks.hashMatches(k, data)) {
    throw new OtaError('INDEX_CHUNK_MISMATCH', `${what}: the chunk at image offset ${offset} (${length} bytes) does not match its signed sha256`);
  }
  return data;
}

/** Follows the stored bytes of a payload and checks each chunk as soon as its bytes are in. */
export class IndexChecker {
  private buf: Buffer = Buffer.alloc(0);
  private base = 0;
  private next = 0;
  private readonly image = createHash('sha256');

  constructor(
    private readonly ix: ChunkIndex,
    private readonly what: string,
  ) {}

  /** Feeds the next stored bytes (consecutive, from payload offset 0). */
  push(stored: Buffer): void {
    this.buf = this.buf.length === 0 ? stored : Buffer.concat([this.buf, stored]);
    const t = this.ix.chunks;
    let used = 0;
    for (let k = this.next; k < t.length && t.storedOffsets[k]! + t.storedLengths[k]! <= this.base + this.buf.length; k = this.next) {
      const from = t.storedOffsets[k]! - this.base;
      this.image.update(decodeChunk(this.ix, k, this.buf.subarray(from, from + t.storedLengths[k]!), this.what));
      used = from + t.storedLengths[k]!;
      this.next++;
    }
    this.buf = this.buf.subarray(used);
    this.base += used;
  }

  /** After the last byte: every chunk was seen and the image hash is the index's. */
  finish(): void {
    const digest = this.image.digest('hex');
    if (this.next !== this.ix.chunks.length || digest !== this.ix.imageSha256) {
      throw new OtaError('INDEX_CHUNK_MISMATCH', `${this.what}: the chunks make an image with sha256 ${digest}, the index says ${this.ix.imageSha256}`);
    }
  }
}
