/**
 * The server's online signing key (DESIGN §4): made at first start in the data directory,
 * `server-key.asc` (private, 0600) and `server-key.pub` (public, for devices). Each file is
 * written to a temporary name, fsynced and renamed, so a crash never leaves half a key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { OtaError, errorMessage } from '../shared/errors.js';
import { generateSigningKey, publicArmor, readPrivateKey } from '../shared/signing.js';
import { replaceFileDurably } from '../shared/fsync.js';

/** File names inside the data directory. */
export const SERVER_KEY_FILE = 'server-key.asc';
/** The public half, as devices need it. */
export const SERVER_PUB_FILE = 'server-key.pub';

/** The server key, parsed once. */
export interface ServerKey {
  privateKey: PrivateKey;
  publicKey: string;
  fingerprint: string;
  /** True when this call created it. */
  created: boolean;
}

async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new OtaError('SERVER_DATA_UNUSABLE', `server key ${path}: cannot be read (${errorMessage(err)})`, { cause: err });
  }
}

/** Loads the data directory's server key, creating it on first use. */
export async function loadOrCreateServerKey(dataDir: string, passphrase = process.env.OTA_SERVER_KEY_PASSPHRASE): Promise<ServerKey> {
  const path = join(dataDir, SERVER_KEY_FILE);
  let bytes = await readIfExists(path);
  let created = false;
  if (bytes === null) {
    const key = await generateSigningKey('otaab server key', passphrase || undefined);
    await replaceFileDurably(join(dataDir, SERVER_KEY_FILE), key.privateKey, 0o600);
    bytes = Buffer.from(key.privateKey, 'utf8');
    created = true;
  }
  const privateKey = await readPrivateKey(bytes, path, passphrase || undefined);
  const publicKey = publicArmor(privateKey);
  // The public file is derived: rewrite it whenever it is missing or stale.
  const pubPath = join(dataDir, SERVER_PUB_FILE);
  if ((await readIfExists(pubPath))?.toString('utf8') !== publicKey) await replaceFileDurably(pubPath, publicKey, 0o644);
  return { privateKey, publicKey, fingerprint: privateKey.getFingerprint().toUpperCase(), created };
}

/** Reads the public server key of a data directory without touching anything. */
export async function readServerPublicKey(dataDir: string): Promise<string | null> {
  const pub = await readIfExists(join(dataDir, SERVER_PUB_FILE));
  if (pub !== null) return pub.toString('utf8');
  const priv = await readIfExists(join(dataDir, SERVER_KEY_FILE));
  if (priv === null) return null;
  return publicArmor(await readPrivateKey(priv, join(dataDir, SERVER_KEY_FILE), process.env.OTA_SERVER_KEY_PASSPHRASE || undefined));
}
