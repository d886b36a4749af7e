/**
 * Native verification of the one kind of OpenPGP signature nearly every release carries: a v4
 * detached binary signature by a v4 Ed25519 (EdDSA) primary key, over SHA-2, checked with
 * Node's built-in Ed25519 instead of openpgp.js. Loading openpgp.js (its module, its AES and
 * curve tables, Node's web streams and WebCrypto it pulls in) was the largest part of an
 * install's start-up left (docs/PERFORMANCE.md); with this an install from a release signed as
 * `ota-release keygen` or `gpg --quick-gen-key … ed25519 sign` makes never loads it.
 *
 * It only ever accepts. Every condition under which openpgp.js could answer otherwise is a
 * reason to decline (`undefined`), and the caller (signing.ts) then asks openpgp.js, whose
 * answer, acceptance or its error, is final. Declined, among others: a key with more than one
 * user id, a user attribute, a direct-key or any revocation signature, a key or signature
 * expiry, a designated revoker, an unknown critical subpacket, key flags without "sign", a
 * self-signature that does not verify or is newer than the time checked at, a signing subkey,
 * a hash other than SHA-224/256/384/512, a text (0x01) signature, partial packet lengths, an
 * armor with a bad checksum; and a signature that does not verify (openpgp.js then says why).
 * RFC 4880 §§ 4.2, 5.2.3, 5.2.4, 5.5.2, 6, 12.2; RFC 8032 (Ed25519) as used by RFC 4880bis.
 */
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';

const EDDSA_LEGACY = 22;
const ED25519_OID = Buffer.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01]);
/** OpenPGP hash algorithm ids accepted natively, by Node's names. */
const HASHES = new Map<number, string>([
  [8, 'sha256'],
  [9, 'sha384'],
  [10, 'sha512'],
  [11, 'sha224'],
]);
/** Subpacket types that may be marked critical (what openpgp.js and GnuPG know and enforce the same). */
const KNOWN_CRITICAL = new Set([2, 11, 16, 21, 22, 23, 25, 27, 30, 33]);
/** Subpackets that make openpgp.js's answer depend on time or on other keys: declined. */
const DECLINED_SUBPACKETS = new Set([3, 9, 12]);

const TAG = { signature: 2, publicKey: 6, trust: 12, userId: 13, publicSubkey: 14 } as const;
/** The packets a key read natively may hold after its primary key (a user attribute, 17, is declined). */
const KEY_PARTS = new Set<number>([TAG.signature, TAG.trust, TAG.userId, TAG.publicSubkey]);

/** A trusted key the native path can check signatures of. */
export interface NativeKey {
  readonly keyId: string;
  readonly fingerprint: string;
  /** Seconds since the epoch. */
  readonly created: number;
  readonly userIds: readonly string[];
  readonly publicKey: KeyObject;
  /** The newest self-certification's creation (seconds): the time checked at must not be before it. */
  readonly certified: number;
}

/** What a native verification found: the signer (its key id is the signature's issuer), as signing.ts reports it. */
export interface NativeSigner {
  readonly key: NativeKey;
  /** The signature's creation, seconds. */
  readonly created: number;
}

interface Packet {
  readonly tag: number;
  readonly body: Buffer;
}

/**
 * A new-format length at `i` of `b` (RFC 4880 § 4.2.2, and § 5.2.3.1 for subpackets): one
 * octet below 192, two up to `twoOctetEnd` (224 for a packet, 255 for a subpacket), five after
 * 255; undefined for a partial length (packets, 224 to 254) or bytes that end early.
 */
function newLength(b: Buffer, i: number, twoOctetEnd: number): { len: number; at: number } | undefined {
  const l0 = b[i];
  if (l0 === undefined) return undefined;
  if (l0 < 192) return { len: l0, at: i + 1 };
  if (l0 < twoOctetEnd) return i + 2 > b.length ? undefined : { len: ((l0 - 192) << 8) + b[i + 1]! + 192, at: i + 2 };
  if (l0 === 255) return i + 5 > b.length ? undefined : { len: b.readUInt32BE(i + 1), at: i + 5 };
  return undefined;
}

/** The packets of `b`; undefined when a header is malformed or uses partial/indeterminate lengths. */
function packets(b: Buffer): Packet[] | undefined {
  const out: Packet[] = [];
  let i = 0;
  while (i < b.length) {
    const h = b[i]!;
    if ((h & 0x80) === 0) return undefined;
    let tag: number;
    let l: { len: number; at: number } | undefined;
    if (h & 0x40) {
      tag = h & 0x3f;
      l = newLength(b, i + 1, 224);
    } else {
      tag = (h >> 2) & 0x0f;
      const n = 1 << (h & 3);
      l = (h & 3) === 3 || i + 1 + n > b.length ? undefined : { len: b.readUIntBE(i + 1, n), at: i + 1 + n };
    }
    if (!l || l.at + l.len > b.length) return undefined;
    out.push({ tag, body: b.subarray(l.at, l.at + l.len) });
    i = l.at + l.len;
  }
  return out;
}

/** CRC-24 of RFC 4880 § 6.1. */
function crc24(b: Buffer): number {
  let crc = 0xb704ce;
  for (const byte of b) {
    crc ^= byte << 16;
    for (let k = 0; k < 8; k++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/**
 * The binary of one armored block of `kind` (e.g. "PUBLIC KEY BLOCK"), or of binary input as is;
 * undefined for anything else (two blocks, text around a binary, a bad checksum or base64).
 */
export function dearmor(input: Uint8Array, kind: string): Buffer | undefined {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const head = bytes.subarray(0, 64).toString('latin1');
  if (!head.includes('-----BEGIN PGP')) return bytes[0] !== undefined && (bytes[0] & 0x80) !== 0 ? bytes : undefined;
  const lines = bytes.toString('latin1').split(/\r?\n/).map((l) => l.replace(/[ \t]+$/, ''));
  const begin = lines.indexOf(`-----BEGIN PGP ${kind}-----`);
  const end = lines.indexOf(`-----END PGP ${kind}-----`);
  if (begin < 0 || end < begin || lines.some((l, k) => k !== begin && l.startsWith('-----BEGIN'))) return undefined;
  let k = begin + 1;
  while (k < end && /^[A-Za-z-]+: /.test(lines[k]!)) k++;
  if (k < end && lines[k] === '') k++;
  let b64 = '';
  let sum: string | undefined;
  for (; k < end; k++) {
    const l = lines[k]!;
    if (l === '') continue;
    if (l.startsWith('=') && l.length === 5 && k === end - 1) sum = l.slice(1);
    else b64 += l;
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  const bin = Buffer.from(b64, 'base64');
  if (sum !== undefined) {
    const want = Buffer.from(sum, 'base64');
    if (want.length !== 3 || want.readUIntBE(0, 3) !== crc24(bin)) return undefined;
  }
  return bin;
}

/** A multiprecision integer at `at` of `b`: its bytes and where the next field starts. */
function mpi(b: Buffer, at: number): { v: Buffer; next: number } | undefined {
  if (at + 2 > b.length) return undefined;
  const bits = b.readUInt16BE(at);
  const n = (bits + 7) >> 3;
  if (at + 2 + n > b.length) return undefined;
  return { v: b.subarray(at + 2, at + 2 + n), next: at + 2 + n };
}

interface Subpacket {
  readonly type: number;
  readonly critical: boolean;
  readonly data: Buffer;
}

function subpackets(b: Buffer): Subpacket[] | undefined {
  const out: Subpacket[] = [];
  let i = 0;
  while (i < b.length) {
    const l = newLength(b, i, 255);
    if (!l || l.len < 1 || l.at + l.len > b.length) return undefined;
    out.push({ type: b[l.at]! & 0x7f, critical: (b[l.at]! & 0x80) !== 0, data: b.subarray(l.at + 1, l.at + l.len) });
    i = l.at + l.len;
  }
  return out;
}

/**
 * The parts every v4 signature packet has: its hashed and unhashed subpackets and the `mpis`
 * MPIs of its public-key algorithm, which must fill it exactly; undefined when they do not.
 */
function sigParts(body: Buffer, mpis: number): { hashedEnd: number; unhashedEnd: number; hashed: Subpacket[]; unhashed: Subpacket[]; values: Buffer[] } | undefined {
  if (body.length < 6 || body[0] !== 4 || !HASHES.has(body[3]!)) return undefined;
  const hashedEnd = 6 + body.readUInt16BE(4);
  if (hashedEnd + 2 > body.length) return undefined;
  const unhashedEnd = hashedEnd + 2 + body.readUInt16BE(hashedEnd);
  if (unhashedEnd + 2 > body.length) return undefined;
  const hashed = subpackets(body.subarray(6, hashedEnd));
  const unhashed = subpackets(body.subarray(hashedEnd + 2, unhashedEnd));
  if (!hashed || !unhashed) return undefined;
  const values: Buffer[] = [];
  let at = unhashedEnd + 2;
  for (let k = 0; k < mpis; k++) {
    const m = mpi(body, at);
    if (!m) return undefined;
    values.push(m.v);
    at = m.next;
  }
  return at === body.length ? { hashedEnd, unhashedEnd, hashed, unhashed, values } : undefined;
}

/** A v4 signature packet's parts, or undefined when it is anything the native path declines. */
interface Sig {
  readonly type: number;
  readonly hash: string;
  /** Version to the end of the hashed subpackets: what the trailer counts. */
  readonly hashedPart: Buffer;
  readonly left16: Buffer;
  readonly rs: Buffer;
  readonly created: number;
  readonly issuerKeyId: string | undefined;
  readonly issuerFingerprint: string | undefined;
  readonly hashed: readonly Subpacket[];
}

function parseSig(body: Buffer): Sig | undefined {
  if (body[2] !== EDDSA_LEGACY) return undefined;
  const parts = sigParts(body, 2);
  if (!parts) return undefined;
  const { hashedEnd, unhashedEnd, hashed, unhashed, values } = parts;
  for (const s of hashed) {
    if (DECLINED_SUBPACKETS.has(s.type)) return undefined;
    if (s.critical && !KNOWN_CRITICAL.has(s.type)) return undefined;
  }
  if (unhashed.some((s) => s.critical && !KNOWN_CRITICAL.has(s.type))) return undefined;
  const created = hashed.filter((s) => s.type === 2);
  if (created.length !== 1 || created[0]!.data.length !== 4) return undefined;
  const ids = new Set<string>();
  const fprs = new Set<string>();
  for (const s of [...hashed, ...unhashed]) {
    if (s.type === 16) {
      if (s.data.length !== 8) return undefined;
      ids.add(s.data.toString('hex').toUpperCase());
    } else if (s.type === 33) {
      if (s.data.length !== 21 || s.data[0] !== 4) return undefined;
      const fpr = s.data.subarray(1).toString('hex').toUpperCase();
      fprs.add(fpr);
      ids.add(fpr.slice(24));
    }
  }
  if (ids.size > 1 || fprs.size > 1) return undefined;
  const [r, s] = values as [Buffer, Buffer];
  if (r.length > 32 || s.length > 32) return undefined;
  const pad = (v: Buffer): Buffer => Buffer.concat([Buffer.alloc(32 - v.length), v]);
  return {
    type: body[1]!,
    hash: HASHES.get(body[3]!)!,
    hashedPart: body.subarray(0, hashedEnd),
    left16: body.subarray(unhashedEnd, unhashedEnd + 2),
    rs: Buffer.concat([pad(r), pad(s)]),
    created: created[0]!.data.readUInt32BE(0),
    issuerKeyId: [...ids][0],
    issuerFingerprint: [...fprs][0],
    hashed,
  };
}

/** MPIs of a signature by each public-key algorithm openpgp.js reads (RSA, DSA, ECDSA, EdDSA). */
const SIG_MPIS = new Map<number, number>([
  [1, 1],
  [3, 1],
  [17, 2],
  [19, 2],
  [22, 2],
]);

/**
 * True when `body` is a well-formed v4 signature packet of an algorithm openpgp.js reads (its
 * subpackets and MPIs fill it exactly): a key file with any other is left to openpgp.js, which
 * then refuses it or reads it, rather than read here where it would refuse it.
 */
function sigWellFormed(body: Buffer): boolean {
  const mpis = SIG_MPIS.get(body[2] ?? -1);
  return mpis !== undefined && sigParts(body, mpis) !== undefined;
}

/** OIDs of the curves a subkey may use here: Curve25519 (ECDH) and Ed25519 (EdDSA). */
const CV25519_OID = Buffer.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01]);

/**
 * True when `body` is a v4 subkey openpgp.js reads alike: Ed25519 (signing), Curve25519 ECDH
 * with SHA-2 and AES key wrapping (what ota-release keygen and GnuPG make) or RSA.
 */
function subkeyWellFormed(body: Buffer): boolean {
  if (body.length < 6 || body[0] !== 4) return false;
  const algo = body[5]!;
  if (algo === EDDSA_LEGACY) return ed25519Of(body) !== undefined;
  if (algo === 1) {
    const n = mpi(body, 6);
    const e = n && mpi(body, n.next);
    return e !== undefined && e.next === body.length;
  }
  if (algo !== 18) return false;
  const oidLen = body[6] ?? 0;
  if (!body.subarray(7, 7 + oidLen).equals(CV25519_OID)) return false;
  const q = mpi(body, 7 + oidLen);
  if (!q || q.v.length !== 33 || q.v[0] !== 0x40) return false;
  const kdf = body.subarray(q.next);
  return kdf.length === 4 && kdf[0] === 3 && kdf[1] === 1 && HASHES.has(kdf[2]!) && [7, 8, 9].includes(kdf[3]!);
}

/** True when `sig` is a valid Ed25519 signature by `key` over `prefix` (then the v4 trailer). */
function sigValid(sig: Sig, key: KeyObject, prefix: readonly Uint8Array[]): boolean {
  const h = createHash(sig.hash);
  for (const p of prefix) h.update(p);
  h.update(sig.hashedPart);
  const trailer = Buffer.alloc(6);
  trailer[0] = 4;
  trailer[1] = 0xff;
  trailer.writeUInt32BE(sig.hashedPart.length, 2);
  const digest = h.update(trailer).digest();
  if (!digest.subarray(0, 2).equals(sig.left16)) return false;
  try {
    return nodeVerify(null, digest, key, sig.rs);
  } catch {
    return false;
  }
}

/** The key id and fingerprint of a v4 key packet body. */
function fingerprintOf(body: Buffer): { keyId: string; fingerprint: string; framed: Buffer } {
  const framed = Buffer.concat([Buffer.from([0x99, body.length >> 8, body.length & 0xff]), body]);
  const fingerprint = createHash('sha1').update(framed).digest('hex').toUpperCase();
  return { keyId: fingerprint.slice(24), fingerprint, framed };
}

/** The Ed25519 key of a v4 EdDSA public key packet, or undefined. */
function ed25519Of(body: Buffer): KeyObject | undefined {
  if (body.length < 7 || body[0] !== 4 || body[5] !== EDDSA_LEGACY) return undefined;
  const oidLen = body[6]!;
  if (!body.subarray(7, 7 + oidLen).equals(ED25519_OID)) return undefined;
  const q = mpi(body, 7 + oidLen);
  if (!q || q.next !== body.length || q.v.length !== 33 || q.v[0] !== 0x40) return undefined;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: q.v.subarray(1).toString('base64url') }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

/** The native form of one transferable public key (its packets), or undefined when declined. */
function nativeKey(ps: readonly Packet[]): NativeKey | undefined {
  const primary = ps[0]!;
  const publicKey = ed25519Of(primary.body);
  if (!publicKey) return undefined;
  const { keyId, fingerprint, framed } = fingerprintOf(primary.body);
  const created = primary.body.readUInt32BE(1);
  const userIds: Buffer[] = [];
  let certified = -1;
  // What the signatures that follow are about: the key itself, a user id, a subkey.
  let about: 'key' | 'uid' | 'subkey' = 'key';
  for (const p of ps.slice(1)) {
    if (p.tag === TAG.userId) {
      userIds.push(p.body);
      about = 'uid';
      continue;
    }
    if (p.tag === TAG.publicSubkey) {
      if (!subkeyWellFormed(p.body)) return undefined;
      about = 'subkey';
      continue;
    }
    if (p.tag === TAG.trust) continue;
    if (p.tag !== TAG.signature || !sigWellFormed(p.body)) return undefined;
    // openpgp.js files a signature by its type wherever it stands: a direct-key signature or a
    // revocation anywhere (0x1F, 0x20, 0x30) is declined, and so is a type out of its place.
    const type = p.body[1];
    if (about === 'key' || type === undefined || type === 0x1f || type === 0x20 || type === 0x30) return undefined;
    if (about === 'subkey') {
      // A subkey's binding or revocation changes nothing of the primary key's validity, and a
      // signature made by a subkey is declined (its issuer is no primary key).
      if (type !== 0x18 && type !== 0x28) return undefined;
      continue;
    }
    if (type < 0x10 || type > 0x13) return undefined;
    // A user id's certification: this key's own must be checkable and valid; another key's is
    // ignored, as openpgp.js ignores it for the key's validity. One that cannot be parsed could
    // be either: declined.
    const sig = parseSig(p.body);
    if (!sig) return undefined;
    if (sig.issuerKeyId !== keyId) continue;
    if (sig.issuerFingerprint !== undefined && sig.issuerFingerprint !== fingerprint) return undefined;
    const uid = userIds[userIds.length - 1]!;
    const uidHead = Buffer.alloc(5);
    uidHead[0] = 0xb4;
    uidHead.writeUInt32BE(uid.length, 1);
    if (!sigValid(sig, publicKey, [framed, uidHead, uid])) return undefined;
    const flags = sig.hashed.find((s) => s.type === 27);
    if (flags && ((flags.data[0] ?? 0) & 0x02) === 0) return undefined;
    certified = Math.max(certified, sig.created);
  }
  if (userIds.length !== 1 || certified < 0) return undefined;
  const userId = userIds[0]!.toString('utf8');
  if (Buffer.from(userId, 'utf8').compare(userIds[0]!) !== 0) return undefined;
  return { keyId, fingerprint, created, userIds: [userId], publicKey, certified };
}

/**
 * The native keys of a key file's bytes (armored or binary, one or more keys), or undefined
 * when any key in it is declined: such a file is read with openpgp.js.
 */
export function nativeKeys(bytes: Uint8Array): NativeKey[] | undefined {
  const bin = dearmor(bytes, 'PUBLIC KEY BLOCK');
  const ps = bin && packets(bin);
  if (!ps || ps.length === 0 || ps[0]!.tag !== TAG.publicKey) return undefined;
  const keys: NativeKey[] = [];
  let start = 0;
  for (let k = 1; k <= ps.length; k++) {
    if (k === ps.length || ps[k]!.tag === TAG.publicKey) {
      const key = nativeKey(ps.slice(start, k));
      if (!key) return undefined;
      keys.push(key);
      start = k;
    } else if (!KEY_PARTS.has(ps[k]!.tag)) return undefined;
  }
  return keys;
}

/**
 * Checks a detached signature (armored or binary) over `data` against `keys` at `now`, the way
 * signing.ts asks openpgp.js to (at the later of `now` and the signature's creation). `keyFor`
 * gives the trusted key for an issuer key id (signing.ts: only when the first file holding that
 * id was read natively). Returns the signer when it verifies; undefined when the native path
 * declines or it does not verify.
 */
export function verifyNative(data: Uint8Array, signature: Uint8Array, keyFor: (keyId: string) => NativeKey | undefined, now: Date): NativeSigner | undefined {
  const bin = dearmor(signature, 'SIGNATURE');
  const ps = bin && packets(bin);
  if (!ps || ps.length !== 1 || ps[0]!.tag !== TAG.signature) return undefined;
  const sig = parseSig(ps[0]!.body);
  if (!sig || sig.type !== 0x00 || !sig.issuerKeyId) return undefined;
  const key = keyFor(sig.issuerKeyId);
  if (!key || (sig.issuerFingerprint !== undefined && sig.issuerFingerprint !== key.fingerprint)) return undefined;
  const at = Math.max(Math.floor(now.getTime() / 1000), sig.created);
  if (key.created > at || key.certified > at || key.created > sig.created) return undefined;
  if (!sigValid(sig, key.publicKey, [data])) return undefined;
  return { key, created: sig.created };
}
