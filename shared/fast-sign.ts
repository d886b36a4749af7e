/**
 * Native-speed OpenPGP signatures for the server's check-in answers. openpgp.js signs an
 * Ed25519 answer in about a millisecond of JavaScript; Node's built-in Ed25519 does it in tens
 * of microseconds. This module builds the same v4 signature packet (RFC 4880 §5.2.3) around a
 * native Ed25519 signature, so any OpenPGP verifier (openpgp.js, GnuPG) accepts it unchanged.
 * Only v4 EdDSA (legacy Ed25519) keys qualify; others fall back to openpgp.js.
 */
import { createHash, createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import type { PrivateKey } from 'openpgp';

const EDDSA_LEGACY = 22;
const SHA512 = 10;
const ED25519_OID = Buffer.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01]);

function mpi(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  const bits = v.length === 0 ? 0 : (v.length - 1) * 8 + (32 - Math.clz32(v[0]!));
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bits);
  return Buffer.concat([len, v]);
}

function subpacket(type: number, body: Buffer): Buffer {
  if (body.length + 1 >= 192) throw new Error('subpacket too long');
  return Buffer.concat([Buffer.from([body.length + 1, type]), body]);
}

function packetHeader(tag: number, length: number): Buffer {
  if (length < 192) return Buffer.from([0xc0 | tag, length]);
  if (length < 8384) {
    const l = length - 192;
    return Buffer.from([0xc0 | tag, (l >> 8) + 192, l & 0xff]);
  }
  const b = Buffer.alloc(6);
  b[0] = 0xc0 | tag;
  b[1] = 0xff;
  b.writeUInt32BE(length, 2);
  return b;
}

/** Signs bytes and returns a binary detached OpenPGP signature. */
export type DetachedSigner = (data: Uint8Array, created?: Date) => Buffer;

/** A native signer for `key`, or null when the key is not a decrypted v4 Ed25519 (EdDSA) key. */
export function nativeSigner(key: PrivateKey): DetachedSigner | null {
  const packet = key.keyPacket as unknown as {
    version: number;
    algorithm: number;
    privateParams?: { seed?: Uint8Array };
    publicParams?: { Q?: Uint8Array; oid?: { oid?: Uint8Array } };
  };
  const seed = packet.privateParams?.seed;
  const q = packet.publicParams?.Q;
  const oid = packet.publicParams?.oid?.oid;
  if (packet.version !== 4 || packet.algorithm !== EDDSA_LEGACY || !seed || seed.length !== 32 || !q || q.length !== 33 || !oid) return null;
  if (!Buffer.from(oid).equals(ED25519_OID)) return null;
  const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
  const nodeKey: KeyObject = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(seed), x: b64u(q.subarray(1)) }, format: 'jwk' });
  const fingerprint = Buffer.from(key.getFingerprint(), 'hex');
  const keyId = fingerprint.subarray(12);

  return (data, created = new Date()) => {
    const time = Buffer.alloc(4);
    time.writeUInt32BE(Math.floor(created.getTime() / 1000));
    const hashed = Buffer.concat([subpacket(33, Buffer.concat([Buffer.from([4]), fingerprint])), subpacket(2, time)]);
    const unhashed = subpacket(16, keyId);
    const hashedLen = Buffer.alloc(2);
    hashedLen.writeUInt16BE(hashed.length);
    const head = Buffer.concat([Buffer.from([4, 0x00, EDDSA_LEGACY, SHA512]), hashedLen, hashed]);
    const trailer = Buffer.alloc(6);
    trailer[0] = 4;
    trailer[1] = 0xff;
    trailer.writeUInt32BE(head.length, 2);
    const digest = createHash('sha512').update(data).update(head).update(trailer).digest();
    // Legacy EdDSA in OpenPGP signs the digest itself as the Ed25519 message.
    const sig = nodeSign(null, digest, nodeKey);
    const unhashedLen = Buffer.alloc(2);
    unhashedLen.writeUInt16BE(unhashed.length);
    const body = Buffer.concat([head, unhashedLen, unhashed, digest.subarray(0, 2), mpi(sig.subarray(0, 32)), mpi(sig.subarray(32))]);
    return Buffer.concat([packetHeader(2, body.length), body]);
  };
}
