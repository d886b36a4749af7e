/**
 * OpenPGP detached signatures over manifests and check-in answers (DESIGN §4).
 * Accepts v4 keys as GnuPG makes them: Ed25519 (EdDSA) or RSA of at least 3072 bits,
 * armored or binary, and rejects expired or revoked signing keys at verification time.
 */
import { readFile } from 'node:fs/promises';
import type * as openpgp from 'openpgp';
import { OtaError, errorMessage } from './errors.js';
import { nativeSigner, type DetachedSigner } from './fast-sign.js';
import { isoTime } from './iso-time.js';
import { nativeKeys, verifyNative, type NativeKey } from './pgp-verify.js';

/**
 * openpgp.js, loaded by its first use: a signature by an Ed25519 primary key is checked without
 * it (pgp-verify.ts), so an install or a check-in signed that way never loads it.
 */
let loaded: Promise<typeof openpgp> | undefined;
function pgp(): Promise<typeof openpgp> {
  loaded ??= import('openpgp');
  return loaded;
}

/**
 * The public keys a verifier trusts. A key file the native path reads (pgp-verify.ts) is read
 * by openpgp.js only when it is needed (a signature the native path declines, or a listing); any
 * other file is read by openpgp.js when the keyring is made, so an invalid file fails there.
 */
export class Keyring {
  private all: Promise<openpgp.PublicKey[]> | undefined;

  private constructor(
    /** Every file in order: its bytes and name, and its keys read natively or by openpgp.js. */
    private readonly files: readonly KeyFile[],
  ) {}

  /** The keys of the files read natively. */
  get native(): NativeKey[] {
    return this.files.flatMap((f) => f.native ?? []);
  }

  /**
   * The native key with primary key id `keyId` (upper-case hex), when the first file that holds
   * that id was read natively: openpgp.js takes the first key that has it, so a copy in a file
   * read by openpgp.js before (one with its revocation, say) is not passed over.
   */
  nativeKey(keyId: string): NativeKey | undefined {
    for (const f of this.files) {
      if (f.native) {
        const k = f.native.find((n) => n.keyId === keyId);
        if (k) return k;
      } else if (f.keys!.some((k) => k.getKeyIDs().some((id) => id.toHex().toUpperCase() === keyId))) return undefined;
    }
    return undefined;
  }

  /** openpgp.js's reading of every key, in file order (read on first call). */
  publicKeys(): Promise<openpgp.PublicKey[]> {
    this.all ??= (async () => {
      const keys: openpgp.PublicKey[] = [];
      for (const f of this.files) keys.push(...(f.keys ?? (await parsePublicKeys(f.bytes, f.source))));
      return keys;
    })();
    return this.all;
  }

  /** The fingerprints of every key, upper-case hex, in file order. */
  async fingerprints(): Promise<string[]> {
    if (this.files.every((f) => f.native)) return this.native.map((k) => k.fingerprint);
    return (await this.publicKeys()).map((k) => k.getFingerprint().toUpperCase());
  }

  /**
   * A keyring of key files' bytes (each armored or binary, one or more keys). `native: false`
   * reads every file with openpgp.js (tests comparing the two).
   */
  static async of(files: readonly { bytes: Uint8Array; source: string }[], opts: { native?: boolean } = {}): Promise<Keyring> {
    const read: KeyFile[] = [];
    for (const f of files) {
      const native = opts.native === false ? undefined : nativeKeys(f.bytes);
      read.push(native ? { ...f, native } : { ...f, keys: await parsePublicKeys(f.bytes, f.source) });
    }
    return new Keyring(read);
  }
}

/** A key file of a keyring: read natively, or by openpgp.js when the keyring was made. */
interface KeyFile {
  readonly bytes: Uint8Array;
  readonly source: string;
  readonly native?: NativeKey[];
  readonly keys?: openpgp.PublicKey[];
}

/** Who made a verified signature. */
export interface SignerInfo {
  keyId: string;
  fingerprint: string;
  userIds: string[];
  algorithm: string;
  created: string;
}

function looksArmored(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 64)).toString('latin1').includes('-----BEGIN PGP');
}

/**
 * Parses OpenPGP data that may be armored or binary with the matching reader; a parse failure
 * becomes `code` with `what` and openpgp.js's reason.
 */
async function readOpenPgp<T>(
  bytes: Uint8Array,
  read: { armored: (text: string) => Promise<T>; binary: (bytes: Uint8Array) => Promise<T> },
  code: 'KEY_INVALID' | 'SIGNATURE_MALFORMED',
  what: string,
): Promise<T> {
  try {
    return looksArmored(bytes) ? await read.armored(Buffer.from(bytes).toString('utf8')) : await read.binary(bytes);
  } catch (cause) {
    throw new OtaError(code, `${what} (${errorMessage(cause)})`, { cause });
  }
}

/** Reads every public key in `bytes` (armored or binary; one or several keys). */
export async function parsePublicKeys(bytes: Uint8Array, source: string): Promise<openpgp.PublicKey[]> {
  const openpgp = await pgp();
  const keys = await readOpenPgp(
    bytes,
    { armored: (armoredKeys) => openpgp.readKeys({ armoredKeys }), binary: (binaryKeys) => openpgp.readKeys({ binaryKeys }) },
    'KEY_INVALID',
    `key ${source}: not an OpenPGP public key`,
  );
  return keys.map((k) => (k.isPrivate() ? k.toPublic() : (k as openpgp.PublicKey)));
}

/** A key file's bytes; KEY_INVALID naming the file when it cannot be read. */
export async function readKeyFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new OtaError('KEY_INVALID', `key ${path}: cannot be read (${errorMessage(cause)})`, { cause });
  }
}

/** Builds a keyring from key files (each armored or binary, one or more keys). */
export async function loadKeyring(paths: readonly string[]): Promise<Keyring> {
  const files: { bytes: Uint8Array; source: string }[] = [];
  for (const p of paths) files.push({ bytes: await readKeyFile(p), source: p });
  return Keyring.of(files);
}

/** Builds a keyring from armored key texts. */
export async function keyringFromArmored(texts: readonly string[]): Promise<Keyring> {
  return Keyring.of(texts.map((t, k) => ({ bytes: Buffer.from(t, 'utf8'), source: `#${k + 1}` })));
}

/** Reads a private key, decrypting it with `passphrase` when it is protected. */
export async function readPrivateKey(bytes: Uint8Array, source: string, passphrase?: string): Promise<openpgp.PrivateKey> {
  const openpgp = await pgp();
  const key = await readOpenPgp(
    bytes,
    { armored: (armoredKey) => openpgp.readPrivateKey({ armoredKey }), binary: (binaryKey) => openpgp.readPrivateKey({ binaryKey }) },
    'KEY_INVALID',
    `key ${source}: not an OpenPGP private key`,
  );
  if (key.isDecrypted()) return key;
  if (passphrase === undefined || passphrase === '') {
    throw new OtaError('KEY_LOCKED', `key ${source} is protected by a passphrase: set OTA_KEY_PASSPHRASE`);
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (cause) {
    throw new OtaError('KEY_LOCKED', `key ${source}: the passphrase in OTA_KEY_PASSPHRASE does not unlock it`, { cause });
  }
}

/** Loads a private key file; the passphrase defaults to OTA_KEY_PASSPHRASE. */
export async function loadPrivateKey(path: string, passphrase = process.env.OTA_KEY_PASSPHRASE): Promise<openpgp.PrivateKey> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new OtaError('KEY_INVALID', `key ${path}: cannot be read (${errorMessage(cause)})`, { cause });
  }
  return readPrivateKey(bytes, path, passphrase);
}

const native = new WeakMap<openpgp.PrivateKey, DetachedSigner | null>();

/**
 * Makes a binary detached signature over `data`. Ed25519 keys are signed natively (the same
 * OpenPGP packet, tens of times faster); other keys go through openpgp.js.
 */
export async function signDetached(data: Uint8Array, key: openpgp.PrivateKey): Promise<Buffer> {
  let fast = native.get(key);
  if (fast === undefined) {
    fast = nativeSigner(key);
    native.set(key, fast);
  }
  if (fast) return fast(data);
  const openpgp = await pgp();
  const message = await openpgp.createMessage({ binary: data });
  const sig = await openpgp.sign({ message, signingKeys: key, detached: true, format: 'binary' });
  return Buffer.from(sig);
}

function algorithmOf(key: openpgp.PublicKey | openpgp.Subkey): { name: string; ok: boolean } {
  const info = key.getAlgorithmInfo() as { algorithm: string; bits?: number; curve?: string };
  const a = info.algorithm;
  if (a === 'ed25519' || (a === 'eddsaLegacy' && (info.curve === 'ed25519Legacy' || info.curve === 'ed25519'))) {
    return { name: 'Ed25519', ok: true };
  }
  if (a === 'rsaSign' || a === 'rsaEncryptSign') return { name: `RSA-${info.bits ?? 0}`, ok: (info.bits ?? 0) >= 3072 };
  return { name: info.curve ? `${a}/${info.curve}` : a, ok: false };
}

/**
 * Verifies a detached signature (binary or armored) over `data` against the keyring.
 * Returns the signer; throws SIGNATURE_* errors that say which check failed.
 */
export async function verifyDetached(
  data: Uint8Array,
  signature: Uint8Array,
  keyring: Keyring,
  what: string,
  now: Date = new Date(),
): Promise<SignerInfo> {
  const quick = verifyNative(data, signature, (id) => keyring.nativeKey(id), now);
  if (quick) {
    return { keyId: quick.key.keyId, fingerprint: quick.key.fingerprint, userIds: [...quick.key.userIds], algorithm: 'Ed25519', created: isoTime(new Date(quick.created * 1000)) };
  }
  // Declined or not valid: openpgp.js decides, and says why when it refuses.
  const openpgp = await pgp();
  const sig = await readOpenPgp(
    signature,
    { armored: (armoredSignature) => openpgp.readSignature({ armoredSignature }), binary: (binarySignature) => openpgp.readSignature({ binarySignature }) },
    'SIGNATURE_MALFORMED',
    `${what}: not an OpenPGP signature`,
  );
  const packets = sig.packets.filter((p) => p instanceof openpgp.SignaturePacket);
  if (packets.length !== 1) {
    throw new OtaError('SIGNATURE_MALFORMED', `${what}: expected exactly one signature, found ${packets.length}`);
  }
  const issuer = sig.getSigningKeyIDs()[0];
  if (!issuer) throw new OtaError('SIGNATURE_MALFORMED', `${what}: the signature names no issuer key`);
  const match = (await keyring.publicKeys()).find((k) => k.getKeys(issuer).length > 0);
  if (!match) {
    throw new OtaError('SIGNATURE_UNKNOWN_KEY', `${what}: signed by key ${issuer.toHex().toUpperCase()}, which is not in the trusted keyring`);
  }
  const signingKey = match.getKeys(issuer)[0]!;
  const alg = algorithmOf(signingKey);
  const fpr = match.getFingerprint().toUpperCase();
  if (!alg.ok) {
    throw new OtaError('SIGNATURE_WEAK_KEY', `${what}: signing key ${fpr} is ${alg.name}; only Ed25519 and RSA of 3072 bits or more are accepted`);
  }
  if (await match.isRevoked(undefined, undefined, now)) {
    throw new OtaError('SIGNATURE_KEY_REVOKED', `${what}: signing key ${fpr} is revoked`);
  }
  const expires = await match.getExpirationTime();
  if (expires instanceof Date && expires.getTime() <= now.getTime()) {
    throw new OtaError('SIGNATURE_KEY_EXPIRED', `${what}: signing key ${fpr} expired on ${isoTime(expires)}`);
  }
  const message = await openpgp.createMessage({ binary: data });
  // A device's clock may be behind its signer's (no RTC, no NTP yet after a power cut): a
  // signature made "in the future" of `now` is still the signer's. Freshness comes from the
  // check-in nonce and the answer's expiry, and the key's expiry and revocation were checked
  // against `now` above, so the signature itself is checked at the later of the two times.
  const packet0 = packets[0] as openpgp.SignaturePacket;
  const at = packet0.created && packet0.created.getTime() > now.getTime() ? packet0.created : now;
  const result = await openpgp.verify({ message, signature: sig, verificationKeys: [match], date: at });
  const first = result.signatures[0];
  try {
    if (!first) throw new Error('no signature');
    await first.verified;
  } catch (cause) {
    const msg = errorMessage(cause);
    if (/expired/i.test(msg)) throw new OtaError('SIGNATURE_KEY_EXPIRED', `${what}: ${msg}`, { cause });
    if (/revoked/i.test(msg)) throw new OtaError('SIGNATURE_KEY_REVOKED', `${what}: ${msg}`, { cause });
    throw new OtaError('SIGNATURE_BAD', `${what}: the signature by ${fpr} does not match (${msg})`, { cause });
  }
  const packet = packets[0] as openpgp.SignaturePacket;
  return {
    keyId: issuer.toHex().toUpperCase(),
    fingerprint: fpr,
    userIds: match.getUserIDs(),
    algorithm: alg.name,
    created: isoTime(packet.created ?? now),
  };
}

/** A freshly made key pair, armored. */
export interface GeneratedKey {
  privateKey: string;
  publicKey: string;
  fingerprint: string;
}

/** Makes a v4 Ed25519 signing key (readable by GnuPG 2.2); protected when `passphrase` is set. */
export async function generateSigningKey(userId: string, passphrase?: string): Promise<GeneratedKey> {
  const openpgp = await pgp();
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [parseUserId(userId)],
    format: 'armored',
    ...(passphrase ? { passphrase } : {}),
  });
  const key = await openpgp.readKey({ armoredKey: publicKey });
  return { privateKey, publicKey, fingerprint: key.getFingerprint().toUpperCase() };
}

function parseUserId(userId: string): openpgp.UserID {
  // openpgp.js refuses an email it does not consider valid; keep such text as the name.
  const m = /^(.*?)\s*<([^<>\s@]+@[^<>\s@]+\.[^<>\s@]+)>\s*$/.exec(userId);
  return m ? { name: m[1] ?? '', email: m[2] ?? '' } : { name: userId.replace(/[<>]/g, '').trim() || 'otaab key' };
}

/** The armored public key of a private key. */
export function publicArmor(key: openpgp.PrivateKey): string {
  return key.toPublic().armor();
}
