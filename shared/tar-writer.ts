/**
 * Minimal ustar header writer for the outer bundle. The bundle holds only short, fixed names
 * (manifest.json, manifest.json.sig, payloads/<name>), so a plain ustar header suffices; sizes
 * of 8 GiB and more get a pax size record, which GNU tar and our reader both honour.
 */

const BLOCK = 512;

function putString(b: Buffer, s: string, off: number, len: number): void {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > len) throw new Error(`tar field too long: ${s}`);
  bytes.copy(b, off);
}

function putOctal(b: Buffer, n: number, off: number, len: number): void {
  putString(b, n.toString(8).padStart(len - 1, '0'), off, len - 1);
}

/** One ustar header block; `linkname` for links. Exported for test fixtures that craft odd tars. */
export function header(name: string, size: number, type: string, mtime: number, linkname = ''): Buffer {
  const b = Buffer.alloc(BLOCK);
  putString(b, name, 0, 100);
  putString(b, linkname, 157, 100);
  putOctal(b, 0o644, 100, 8);
  putOctal(b, 0, 108, 8);
  putOctal(b, 0, 116, 8);
  putOctal(b, size, 124, 12);
  putOctal(b, mtime, 136, 12);
  b.fill(0x20, 148, 156);
  b[156] = type.charCodeAt(0);
  putString(b, 'ustar\u000000', 257, 8);
  putString(b, 'root', 265, 32);
  putString(b, 'root', 297, 32);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  putString(b, `${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return b;
}

const MAX_OCTAL_SIZE = 0o77777777777;

/** The header block(s) that precede an entry of `size` bytes named `name`. */
export function entryHeader(name: string, size: number, mtime: number): Buffer {
  if (size <= MAX_OCTAL_SIZE) return header(name, size, '0', mtime);
  const rec = (body: string): string => {
    let len = body.length + 3;
    while (`${len} ${body}\n`.length !== len) len = `${len} ${body}\n`.length;
    return `${len} ${body}\n`;
  };
  const pax = Buffer.from(rec(`size=${size}`), 'utf8');
  return Buffer.concat([header(`PaxHeaders/${name}`.slice(0, 99), pax.length, 'x', mtime), pad(pax), header(name, 0, '0', mtime)]);
}

/** `data` followed by zeros up to a block boundary. */
export function pad(data: Buffer): Buffer {
  const rest = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(rest)]);
}

/** Zeros that pad a body of `size` bytes to a block boundary. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
