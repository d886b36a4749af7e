/**
 * The chunk index of an image payload (docs/DELTA.md): for every content-defined chunk of the
 * uncompressed image, its offset, length and sha256, and where its bytes are stored in the
 * payload (the same range for an uncompressed image; an independently inflatable deflate
 * segment for a gzip image). The manifest signs the index entry's hash and size, so once that
 * matches, every chunk a device takes, from its running slot or from a Range request, is
 * checked against a signed hash.
 *
 * In the bundle the index is stored deflated (`index/<name>`); the binary layout, big-endian:
 *   magic "OTAIDX" V 0x00 | u8 storage (0 raw, 1 gzip) | 3 zero bytes | u32 min, avg, max |
 *   u64 imageSize | 32 bytes image sha256 | u64 storedSize | u32 count |
 *   count × (i64 offset | u32 length | i64 storedOffset | u32 storedLength | H bytes chunk hash)
 * where version V 2 (written since the default chunks became 32 KiB) has H = 16, the first 16
 * bytes of the chunk's sha256 (as zchunk's SHA-512/128), and version 1 H = 32, the whole sha256.
 * Version 2 also stores the fields column by column and the stored length as its difference
 * from the length (i32), see `layout`.
 * The hash is most of an entry's deflated size, so halving it pays for chunks half as large;
 * the image's whole sha256 is still checked before a slot is armed.
 * where each offset is stored as its distance from the end of the chunk before (0 for a
 * well-formed index), so the deflated index costs little more than its hashes; a negative or
 * positive distance still says exactly how an index overlaps, goes backwards or leaves a gap.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { OtaError } from './errors.js';
import { validChunkParams, type ChunkParams } from './chunker.js';

/** How the chunks' bytes are stored in the payload. */
export type ChunkStorage = 'raw' | 'gzip';

/** One chunk of the image. */
export interface ChunkEntry {
  readonly offset: number;
  readonly length: number;
  /** Where its stored bytes lie in the payload. */
  readonly storedOffset: number;
  readonly storedLength: number;
  /** The chunk's hash: the first CHUNK_HASH_BYTES of its sha256 (index v2), or all 32 (v1). */
  readonly sha256: Buffer;
}

/** Bytes of a chunk hash in the indexes written now (index v2). */
export const CHUNK_HASH_BYTES = 16;

/** The hash of a chunk's bytes as index v2 stores it: sha256, first 16 bytes. */
export function chunkHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest().subarray(0, CHUNK_HASH_BYTES);
}

/** True when `data` hashes to `want` (a v2 16-byte or a v1 32-byte chunk hash). */
export function chunkHashMatches(data: Uint8Array, want: Buffer): boolean {
  const h = createHash('sha256').update(data).digest();
  return want.length >= CHUNK_HASH_BYTES && h.subarray(0, want.length).equals(want);
}

/**
 * The chunks of an index as columns of typed arrays: 40 bytes a chunk (8 + 4 + 8 + 4 and a
 * 16-byte hash in one buffer) and no object per chunk, so that an agent holding the indexes of
 * a 512 MiB image (16,384 chunks) keeps about 0.6 MiB instead of about 2.5 MiB of heap objects.
 * `at(k)` makes a ChunkEntry when one is wanted (tests, tools); hot paths read the columns.
 */
export class ChunkTable implements Iterable<ChunkEntry> {
  constructor(
    readonly offsets: Float64Array,
    readonly lengths: Uint32Array,
    readonly storedOffsets: Float64Array,
    readonly storedLengths: Uint32Array,
    /** The chunk hashes, `hashBytes` each (16 in index v2, 32 in v1), chunk k at k × hashBytes. */
    readonly hashes: Buffer,
    readonly hashBytes: number,
  ) {}

  /** A table of `entries` (their hashes must all have one length). */
  static of(entries: readonly ChunkEntry[]): ChunkTable {
    const b = new ChunkTableBuilder(entries.length, entries[0]?.sha256.length ?? CHUNK_HASH_BYTES);
    for (const c of entries) b.push(c.offset, c.length, c.storedOffset, c.storedLength, c.sha256);
    return b.done();
  }

  /** The number of chunks. */
  get length(): number {
    return this.lengths.length;
  }

  /** Chunk k's hash (a view into the table). */
  hash(k: number): Buffer {
    return this.hashes.subarray(k * this.hashBytes, (k + 1) * this.hashBytes);
  }

  /** True when `data` hashes to chunk k's hash. */
  hashMatches(k: number, data: Uint8Array): boolean {
    const h = createHash('sha256').update(data).digest();
    const at = k * this.hashBytes;
    return h.compare(this.hashes, at, at + this.hashBytes, 0, this.hashBytes) === 0;
  }

  /** Chunk k as an object (negative k counts from the end, as Array.prototype.at). */
  at(k: number): ChunkEntry | undefined {
    const i = k < 0 ? this.length + k : k;
    if (i < 0 || i >= this.length) return undefined;
    return { offset: this.offsets[i]!, length: this.lengths[i]!, storedOffset: this.storedOffsets[i]!, storedLength: this.storedLengths[i]!, sha256: Buffer.from(this.hash(i)) };
  }

  *[Symbol.iterator](): Iterator<ChunkEntry> {
    for (let k = 0; k < this.length; k++) yield this.at(k)!;
  }

  map<T>(f: (c: ChunkEntry, k: number) => T): T[] {
    const out: T[] = [];
    for (let k = 0; k < this.length; k++) out.push(f(this.at(k)!, k));
    return out;
  }

  every(f: (c: ChunkEntry, k: number) => boolean): boolean {
    for (let k = 0; k < this.length; k++) if (!f(this.at(k)!, k)) return false;
    return true;
  }

  slice(start?: number, end?: number): ChunkEntry[] {
    return [...this].slice(start, end);
  }
}

/** Appends chunks to growing columns; `done()` trims them into a ChunkTable. */
export class ChunkTableBuilder {
  private n = 0;
  private offsets: Float64Array;
  private lengths: Uint32Array;
  private storedOffsets: Float64Array;
  private storedLengths: Uint32Array;
  private hashes: Buffer;

  constructor(
    capacity = 1024,
    readonly hashBytes: number = CHUNK_HASH_BYTES,
  ) {
    const cap = Math.max(1, capacity);
    this.offsets = new Float64Array(cap);
    this.lengths = new Uint32Array(cap);
    this.storedOffsets = new Float64Array(cap);
    this.storedLengths = new Uint32Array(cap);
    this.hashes = Buffer.alloc(cap * hashBytes);
  }

  private grow(): void {
    const cap = this.lengths.length * 2;
    this.offsets = widened(this.offsets, cap);
    this.lengths = widened(this.lengths, cap);
    this.storedOffsets = widened(this.storedOffsets, cap);
    this.storedLengths = widened(this.storedLengths, cap);
    const h = Buffer.alloc(cap * this.hashBytes);
    this.hashes.copy(h);
    this.hashes = h;
  }

  push(offset: number, length: number, storedOffset: number, storedLength: number, hash: Uint8Array): void {
    if (hash.length !== this.hashBytes) throw new RangeError(`chunk hashes must all be ${CHUNK_HASH_BYTES} (index v2) or all 32 bytes (index v1)`);
    if (this.n === this.lengths.length) this.grow();
    const k = this.n++;
    this.offsets[k] = offset;
    this.lengths[k] = length;
    this.storedOffsets[k] = storedOffset;
    this.storedLengths[k] = storedLength;
    this.hashes.set(hash, k * this.hashBytes);
  }

  done(): ChunkTable {
    const n = this.n;
    const fit = <T extends Float64Array | Uint32Array>(a: T): T => (a.length === n ? a : (a.slice(0, n) as T));
    const h = this.hashes.length === n * this.hashBytes ? this.hashes : Buffer.from(this.hashes.subarray(0, n * this.hashBytes));
    return new ChunkTable(fit(this.offsets), fit(this.lengths), fit(this.storedOffsets), fit(this.storedLengths), h, this.hashBytes);
  }
}

/** What an index says besides its chunks. */
interface IndexHead {
  readonly storage: ChunkStorage;
  readonly params: ChunkParams;
  readonly imageSize: number;
  readonly imageSha256: string;
  /** Size of the payload the stored offsets point into. */
  readonly storedSize: number;
}

/** A parsed, checked index (or one just built), its chunks as columns. */
export interface ChunkIndex extends IndexHead {
  readonly chunks: ChunkTable;
}

/** An index to encode: its chunks as a table or as entries (tools and tests edit entries). */
export interface ChunkIndexDraft extends IndexHead {
  readonly chunks: ChunkTable | readonly ChunkEntry[];
}

const MAGIC = Buffer.from('OTAIDX', 'latin1');
const HEADER = 8 + 4 + 12 + 8 + 32 + 8 + 4;
/** Entry size by index version: the chunk hash is 32 bytes in v1, 16 in v2. */
const ENTRY_OF: Record<number, number> = { 1: 8 + 4 + 8 + 4 + 32, 2: 8 + 4 + 8 + 4 + CHUNK_HASH_BYTES };

/** Where chunk k's fields lie in an index of `n` chunks. */
interface Layout {
  offset(k: number): number;
  length(k: number): number;
  storedOffset(k: number): number;
  /** v1: the stored length (u32); v2: stored length minus length (i32). */
  stored(k: number): number;
  hash(k: number): number;
}

/**
 * v1 is row-major (one 56-byte entry per chunk). v2 is column-major: all offset distances, all
 * lengths, all stored offset distances, all (stored length − length), then all hashes, so that
 * the deflated index spends its bytes on the hashes (the zero distances and the near-constant
 * stored-length differences of incompressible chunks deflate to almost nothing).
 */
function layout(version: number, n: number): Layout {
  if (version === 1) {
    const at = (k: number): number => HEADER + k * ENTRY_OF[1]!;
    return { offset: at, length: (k) => at(k) + 8, storedOffset: (k) => at(k) + 12, stored: (k) => at(k) + 20, hash: (k) => at(k) + 24 };
  }
  return {
    offset: (k) => HEADER + 8 * k,
    length: (k) => HEADER + 8 * n + 4 * k,
    storedOffset: (k) => HEADER + 12 * n + 8 * k,
    stored: (k) => HEADER + 20 * n + 4 * k,
    hash: (k) => HEADER + 24 * n + CHUNK_HASH_BYTES * k,
  };
}

/** The largest inflated index accepted (about 1.2 million chunks: a 75 GiB image at 64 KiB). */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;
/** What a chunk's deflate segment may add to its length (stored blocks and the flush marker). */
export function storedBound(length: number): number {
  return length + 5 * Math.ceil(length / 16384) + 16;
}

/** The binary form of an index (not yet deflated). */
export function encodeIndex(ix: ChunkIndexDraft): Buffer {
  const t = ix.chunks instanceof ChunkTable ? ix.chunks : ChunkTable.of(ix.chunks);
  const version = t.hashBytes === 32 ? 1 : 2;
  if (t.hashBytes !== (version === 1 ? 32 : CHUNK_HASH_BYTES)) {
    throw new RangeError(`chunk hashes must all be ${CHUNK_HASH_BYTES} (index v2) or all 32 bytes (index v1)`);
  }
  const ENTRY = ENTRY_OF[version]!;
  const n = t.length;
  const out = Buffer.alloc(HEADER + ENTRY * n);
  MAGIC.copy(out, 0);
  out[6] = version;
  out[8] = ix.storage === 'raw' ? 0 : 1;
  out.writeUInt32BE(ix.params.min, 12);
  out.writeUInt32BE(ix.params.avg, 16);
  out.writeUInt32BE(ix.params.max, 20);
  out.writeBigUInt64BE(BigInt(ix.imageSize), 24);
  Buffer.from(ix.imageSha256, 'hex').copy(out, 32);
  out.writeBigUInt64BE(BigInt(ix.storedSize), 64);
  out.writeUInt32BE(n, 72);
  const L = layout(version, n);
  let end = 0;
  let storedEnd = 0;
  for (let k = 0; k < n; k++) {
    const offset = t.offsets[k]!;
    const length = t.lengths[k]!;
    const storedOffset = t.storedOffsets[k]!;
    const storedLength = t.storedLengths[k]!;
    out.writeBigInt64BE(BigInt(offset - end), L.offset(k));
    out.writeUInt32BE(length, L.length(k));
    out.writeBigInt64BE(BigInt(storedOffset - storedEnd), L.storedOffset(k));
    if (version === 1) out.writeUInt32BE(storedLength, L.stored(k));
    else out.writeInt32BE(storedLength - length, L.stored(k));
    end = offset + length;
    storedEnd = storedOffset + storedLength;
    t.hashes.copy(out, L.hash(k), k * t.hashBytes, (k + 1) * t.hashBytes);
  }
  return out;
}

/** The bytes of an `index/<name>` bundle entry. */
export function packIndex(ix: ChunkIndexDraft): Buffer {
  return deflateRawSync(encodeIndex(ix), { level: 9 });
}

function malformed(what: string, why: string): OtaError {
  return new OtaError('INDEX_MALFORMED', `${what}: ${why}`);
}

function u64(b: Buffer, at: number, what: string): number {
  const v = b.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(what, `a 64-bit field at byte ${at} is out of range`);
  return Number(v);
}

/** `base` plus the signed distance at `at`; out of range (or negative) is malformed. */
function after(base: number, b: Buffer, at: number, what: string): number {
  const v = BigInt(base) + b.readBigInt64BE(at);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(what, `the offset at byte ${at} is out of range`);
  return Number(v);
}

/** Inflates an `index/<name>` entry (bounded) and parses it strictly. */
export function unpackIndex(packed: Uint8Array, what: string): ChunkIndex {
  let raw: Buffer;
  try {
    raw = inflateRawSync(packed, { maxOutputLength: MAX_INDEX_BYTES });
  } catch (cause) {
    throw new OtaError('INDEX_MALFORMED', `${what}: the index does not inflate (or inflates past ${MAX_INDEX_BYTES} bytes)`, { cause });
  }
  return parseIndex(raw, what);
}

/**
 * Parses a binary index and checks it whole: chunks sorted, neither overlapping nor leaving
 * gaps, none larger than `max`, none past the image's end, stored ranges inside the payload.
 * Each kind of fault has its own code, so a report says which rule a bad index broke.
 */
export function parseIndex(b: Buffer, what: string): ChunkIndex {
  if (b.length < HEADER || !b.subarray(0, 6).equals(MAGIC) || ENTRY_OF[b[6]!] === undefined || b[7] !== 0) {
    throw malformed(what, 'not an otaab chunk index (bad magic or version; this reader knows versions 1 and 2)');
  }
  const ENTRY = ENTRY_OF[b[6]!]!;
  const st = b[8];
  if ((st !== 0 && st !== 1) || b[9] !== 0 || b[10] !== 0 || b[11] !== 0) throw malformed(what, `unknown storage ${st} or non-zero reserved bytes`);
  const storage: ChunkStorage = st === 0 ? 'raw' : 'gzip';
  const params = { min: b.readUInt32BE(12), avg: b.readUInt32BE(16), max: b.readUInt32BE(20) };
  if (!validChunkParams(params)) throw malformed(what, `chunk sizes ${params.min}/${params.avg}/${params.max} are not valid`);
  const imageSize = u64(b, 24, what);
  const imageSha256 = b.subarray(32, 64).toString('hex');
  const storedSize = u64(b, 64, what);
  const count = b.readUInt32BE(72);
  if (b.length !== HEADER + count * ENTRY) throw malformed(what, `${b.length} bytes for ${count} chunks (${HEADER + count * ENTRY} expected)`);
  if (storage === 'raw' && storedSize !== imageSize) throw new OtaError('INDEX_STORED_RANGE', `${what}: a raw image's payload is ${storedSize} bytes, the image ${imageSize}`);
  let end = 0;
  let storedEnd = -1;
  const version = b[6]!;
  const L = layout(version, count);
  const hashBytes = ENTRY - 24;
  const offsets = new Float64Array(count);
  const lengths = new Uint32Array(count);
  const storedOffsets = new Float64Array(count);
  const storedLengths = new Uint32Array(count);
  // v2 keeps the hashes as one column: one copy; v1 has them in its rows.
  const hashes = version === 1 ? Buffer.alloc(count * hashBytes) : Buffer.from(b.subarray(L.hash(0), L.hash(count)));
  for (let k = 0; k < count; k++) {
    const offset = after(end, b, L.offset(k), what);
    const length = b.readUInt32BE(L.length(k));
    const storedOffset = after(Math.max(0, storedEnd), b, L.storedOffset(k), what);
    const storedLength = version === 1 ? b.readUInt32BE(L.stored(k)) : length + b.readInt32BE(L.stored(k));
    if (version === 1) b.copy(hashes, k * hashBytes, L.hash(k), L.hash(k) + hashBytes);
    if (k > 0 && offset < offsets[k - 1]!) throw new OtaError('INDEX_UNSORTED', `${what}: chunk ${k} at offset ${offset} comes after chunk ${k - 1} at ${offsets[k - 1]}`);
    if (offset < end) throw new OtaError('INDEX_OVERLAP', `${what}: chunk ${k} at offset ${offset} overlaps the previous chunk, which ends at ${end}`);
    if (offset > end) throw new OtaError('INDEX_GAP', `${what}: chunk ${k} starts at ${offset}, leaving bytes ${end}-${offset - 1} of the image in no chunk`);
    if (length === 0 || length > params.max) throw new OtaError('INDEX_CHUNK_TOO_LARGE', `${what}: chunk ${k} is ${length} bytes; chunks are 1 to ${params.max} bytes`);
    if (offset + length > imageSize) throw new OtaError('INDEX_PAST_END', `${what}: chunk ${k} (${offset}+${length}) runs past the image's ${imageSize} bytes`);
    const rawOk = storedLength === length && storedOffset === offset;
    const gzOk = storedLength > 0 && storedLength <= storedBound(length) && (storedEnd < 0 || storedOffset === storedEnd);
    if (storage === 'raw' ? !rawOk : !gzOk) {
      throw new OtaError('INDEX_STORED_RANGE', `${what}: chunk ${k} is stored at ${storedOffset}+${storedLength}, which does not follow the previous chunk or fit its length`);
    }
    if (storedOffset + storedLength > storedSize) {
      throw new OtaError('INDEX_STORED_RANGE', `${what}: chunk ${k}'s stored bytes (${storedOffset}+${storedLength}) run past the payload's ${storedSize} bytes`);
    }
    offsets[k] = offset;
    lengths[k] = length;
    storedOffsets[k] = storedOffset;
    storedLengths[k] = storedLength;
    end = offset + length;
    storedEnd = storedOffset + storedLength;
  }
  if (end !== imageSize) throw new OtaError('INDEX_GAP', `${what}: the chunks cover ${end} of the image's ${imageSize} bytes`);
  const chunks = new ChunkTable(offsets, lengths, storedOffsets, storedLengths, hashes, hashBytes);
  return { storage, params, imageSize, imageSha256, storedSize, chunks };
}

/** A copy of column `a` with room for `cap` entries. */
function widened<T extends Float64Array | Uint32Array>(a: T, cap: number): T {
  const out = new (a.constructor as new (n: number) => T)(cap);
  out.set(a);
  return out;
}
