/**
 * Builds the chunk index of an image while staging it for a bundle: an uncompressed image is
 * only read (its chunks are stored where they lie), a gzip image is written as a gzip stream
 * whose deflate data restarts at every chunk boundary (each chunk compressed on its own, then a
 * full flush), so the payload is still one ordinary gzip file for a full install and each
 * chunk's compressed range can be fetched and inflated alone for a delta install.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import { DEFAULT_CHUNKING, chunkStream, type ChunkParams } from './chunker.js';
import { ChunkTableBuilder, chunkHash, type ChunkIndex } from './chunk-index.js';
import { CHUNK } from './hashing.js';
import { writeAll } from './write-behind.js';

/** gzip header: deflate, no name, mtime 0, unknown OS; the first chunk's stored bytes follow it. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
/** A final, empty fixed-Huffman deflate block. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/** How to chunk and compress. */
export interface ChunkBuildOptions {
  readonly params?: ChunkParams;
  /** zlib level of each chunk's deflate segment (gzip images). */
  readonly level?: number;
}

/** A staged image payload and its index. */
export interface ChunkedImage {
  readonly index: ChunkIndex;
  /** The payload's sha256 and size as stored in the bundle. */
  readonly sha256: string;
  readonly size: number;
}

function readImage(path: string): AsyncIterable<Buffer> {
  return createReadStream(path, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>;
}

/** The index of an uncompressed image (its payload is the file itself). */
export async function indexRawImage(path: string, opts: ChunkBuildOptions = {}): Promise<ChunkedImage> {
  const params = opts.params ?? DEFAULT_CHUNKING;
  const whole = createHash('sha256');
  const chunks = new ChunkTableBuilder();
  let offset = 0;
  for await (const c of chunkStream(readImage(path), params)) {
    whole.update(c);
    chunks.push(offset, c.length, offset, c.length, chunkHash(c));
    offset += c.length;
  }
  const sha256 = whole.digest('hex');
  return { index: { storage: 'raw', params, imageSize: offset, imageSha256: sha256, storedSize: offset, chunks: chunks.done() }, sha256, size: offset };
}

/** Writes `path` gzip-compressed chunk by chunk to `out`; returns the index and the payload's hash. */
export async function stageChunkedGzip(path: string, out: string, opts: ChunkBuildOptions = {}): Promise<ChunkedImage> {
  const params = opts.params ?? DEFAULT_CHUNKING;
  const level = opts.level ?? 6;
  const fh = await open(out, 'w');
  const stored = createHash('sha256');
  const image = createHash('sha256');
  let size = 0;
  const write = async (b: Buffer): Promise<void> => {
    stored.update(b);
    const at = size;
    size += b.length;
    await writeAll(fh, [b], at);
  };
  const chunks = new ChunkTableBuilder();
  let offset = 0;
  let crc = 0;
  try {
    await write(GZIP_HEADER);
    for await (const c of chunkStream(readImage(path), params)) {
      image.update(c);
      crc = crc32(c, crc);
      const seg = deflateRawSync(c, { level, finishFlush: constants.Z_FULL_FLUSH });
      chunks.push(offset, c.length, size, seg.length, chunkHash(c));
      offset += c.length;
      await write(seg);
    }
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(offset % 2 ** 32, 4);
    await write(Buffer.concat([FINAL_BLOCK, trailer]));
    await fh.sync();
  } finally {
    await fh.close();
  }
  const index: ChunkIndex = { storage: 'gzip', params, imageSize: offset, imageSha256: image.digest('hex'), storedSize: size, chunks: chunks.done() };
  return { index, sha256: stored.digest('hex'), size };
}
