/**
 * A strict reader for the outer bundle tar (ustar, GNU and pax headers). Unlike lenient tar
 * readers it insists on a valid checksum for every header, on the end-of-archive marker, and
 * on nothing but zero padding after it, so truncation and appended bytes are both caught.
 */
import { OtaError } from './errors.js';
import type { ByteSource } from './byte-source.js';

const BLOCK = 512;
/** The most zero padding accepted after the end marker (GNU tar pads to 10 KiB records). */
const MAX_TRAILING_ZEROS = 64 * 1024;
/** The largest pax or GNU long-name header body accepted. */
const MAX_META = 64 * 1024;

/** One entry's header, after pax and GNU long-name records are applied. */
export interface TarHeader {
  name: string;
  size: number;
  /** ustar typeflag: '0' regular, '5' directory, '2' symlink, ... */
  type: string;
  /** Offset of the first body byte in the input. */
  dataOffset: number;
  /** The rest of the ustar header, for a tree's entries (shared/tree.ts); absent where a header is made up. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  /** A link's target: the header's, a pax linkpath's or a GNU long link name's. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function field(b: Buffer, start: number, len: number): Buffer {
  const f = b.subarray(start, start + len);
  const nul = f.indexOf(0);
  return nul === -1 ? f : f.subarray(0, nul);
}

function octal(b: Buffer, start: number, len: number, what: string): number {
  const f = b.subarray(start, start + len);
  if ((f[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian binary, first byte's high bit set.
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    if (!Number.isSafeInteger(v)) throw new OtaError('BUNDLE_NOT_TAR', `${what}: size field out of range`);
    return v;
  }
  const s = f.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new OtaError('BUNDLE_NOT_TAR', `${what}: numeric field is not octal`);
  return parseInt(s, 8);
}

/** A numeric field the bundle does not rely on: undefined unless it reads as a number. */
function looseOctal(b: Buffer, start: number, len: number): number | undefined {
  try {
    return octal(b, start, len, '');
  } catch {
    return undefined;
  }
}

function checksumOk(b: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  const s = b.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  return /^[0-7]+$/.test(s) && parseInt(s, 8) === sum;
}

function parsePax(body: Buffer, what: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    const len = sp === -1 ? NaN : Number(body.subarray(i, sp).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= 0 || i + len > body.length || body[i + len - 1] !== 0x0a) {
      throw new OtaError('BUNDLE_NOT_TAR', `${what}: malformed pax record`);
    }
    const rec = body.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new OtaError('BUNDLE_NOT_TAR', `${what}: malformed pax record`);
    out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    i += len;
  }
  return out;
}

/** Pads `n` up to a whole number of tar blocks. */
export function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** Reads entry headers one at a time; the caller consumes each body with `source.take`. */
export class TarReader {
  constructor(private readonly source: ByteSource, private readonly what: string) {}

  /** The next entry's header, or null at a valid end of archive. */
  async next(): Promise<TarHeader | null> {
    let paxName: string | undefined;
    let paxSize: number | undefined;
    let paxLink: string | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const at = this.source.position;
      const block = await this.source.read(BLOCK);
      if (block.length === 0 && at === 0) throw new OtaError('BUNDLE_EMPTY', `${this.what}: the file is empty`);
      if (block.length < BLOCK) {
        throw new OtaError('BUNDLE_TRUNCATED', `${this.what}: the archive ends at offset ${at + block.length} without its end-of-archive marker`);
      }
      if (isZero(block)) {
        if (paxName !== undefined || longName !== undefined || paxSize !== undefined || paxLink !== undefined || longLink !== undefined) {
          throw new OtaError('BUNDLE_TRUNCATED', `${this.what}: an extended header at offset ${at} has no entry`);
        }
        await this.expectEnd(at);
        return null;
      }
      if (!checksumOk(block)) {
        throw new OtaError('BUNDLE_NOT_TAR', `${this.what}: the block at offset ${at} is not a valid tar header (bad checksum)`);
      }
      const magic = block.subarray(257, 263).toString('latin1');
      const ustar = magic === 'ustar\0' || magic === 'ustar ';
      const type = String.fromCharCode(block[156]! || 0x30);
      const size = octal(block, 124, 12, `${this.what}: header at offset ${at}`);
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        if (size > MAX_META) throw new OtaError('BUNDLE_NOT_TAR', `${this.what}: extended header at offset ${at} is ${size} bytes`);
        const body = Buffer.concat(await collect(this.source.take(padded(size), this.what))).subarray(0, size);
        if (type === 'L' || type === 'K') {
          const nul = body.indexOf(0);
          const long = body.subarray(0, nul === -1 ? body.length : nul).toString('utf8');
          if (type === 'L') longName = long;
          else longLink = long;
        } else if (type === 'x') {
          const pax = parsePax(body, `${this.what}: pax header at offset ${at}`);
          const p = pax.get('path');
          if (p !== undefined) paxName = p.toString('utf8');
          const l = pax.get('linkpath');
          if (l !== undefined) paxLink = l.toString('utf8');
          const s = pax.get('size');
          if (s !== undefined) {
            const v = s.toString('latin1');
            if (!/^\d{1,16}$/.test(v)) throw new OtaError('BUNDLE_NOT_TAR', `${this.what}: pax size "${v}" is not a number`);
            paxSize = Number(v);
          }
        }
        continue;
      }
      let name = field(block, 0, 100).toString('utf8');
      if (ustar && magic === 'ustar\0') {
        const prefix = field(block, 345, 155).toString('utf8');
        if (prefix) name = `${prefix}/${name}`;
      }
      name = paxName ?? longName ?? name;
      return {
        name,
        size: paxSize ?? size,
        type,
        dataOffset: this.source.position,
        mode: looseOctal(block, 100, 8),
        uid: looseOctal(block, 108, 8),
        gid: looseOctal(block, 116, 8),
        mtime: looseOctal(block, 136, 12),
        linkname: paxLink ?? longLink ?? field(block, 157, 100).toString('utf8'),
        devmajor: looseOctal(block, 329, 8),
        devminor: looseOctal(block, 337, 8),
      };
    }
  }

  private async expectEnd(at: number): Promise<void> {
    let seen = BLOCK;
    for (;;) {
      const chunk = await this.source.read(BLOCK);
      if (chunk.length === 0) break;
      if (!isZero(chunk)) {
        throw new OtaError('BUNDLE_TRAILING_DATA', `${this.what}: non-zero bytes at offset ${this.source.position - chunk.length}, after the end-of-archive marker at ${at}`);
      }
      seen += chunk.length;
      if (seen > MAX_TRAILING_ZEROS) {
        throw new OtaError('BUNDLE_TRAILING_DATA', `${this.what}: more than ${MAX_TRAILING_ZEROS} bytes follow the end-of-archive marker at ${at}`);
      }
    }
    if (seen < 2 * BLOCK) {
      throw new OtaError('BUNDLE_TRUNCATED', `${this.what}: the end-of-archive marker at offset ${at} is incomplete`);
    }
  }
}

/** Collects an async iterable of buffers (only for small, bounded bodies), each copied: a lent chunk's memory is reused once the next is asked for. */
export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return out;
}
