/**
 * The chunk index of bytes a device already has (its running slot, or an old bundle's image)
 * when no kept index describes them: the same chunker over the bytes, so identical content
 * cuts identically. Costs one read of the slot (docs/DELTA.md has the measured price).
 */
import { createHash } from 'node:crypto';
import { DEFAULT_CHUNKING, chunkStream, type ChunkParams } from '../chunker.js';
import { ChunkTableBuilder, chunkHash, type ChunkIndex } from '../chunk-index.js';

/** Chunks `input` into a raw index (no stored ranges beyond the bytes themselves). */
export async function indexOfStream(input: AsyncIterable<Uint8Array>, params: ChunkParams = DEFAULT_CHUNKING): Promise<ChunkIndex> {
  const whole = createHash('sha256');
  const chunks = new ChunkTableBuilder();
  let offset = 0;
  for await (const c of chunkStream(input, params)) {
    whole.update(c);
    chunks.push(offset, c.length, offset, c.length, chunkHash(c));
    offset += c.length;
  }
  return { storage: 'raw', params, imageSize: offset, imageSha256: whole.digest('hex'), storedSize: offset, chunks: chunks.done() };
}
