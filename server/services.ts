/**
 * The server's services, opened once from a data directory: database, bundle storage, answer
 * signer and release keyring. `buildApp` hands them to the routes as fastify decorators.
 */
import { mkdir } from 'node:fs/promises';
import { OtaError, errorMessage } from '../shared/errors.js';
import { loadKeyring, type Keyring } from '../shared/signing.js';
import type { ServerConfig } from './config.js';
import { Store } from './db/store.js';
import { loadOrCreateServerKey } from './server-key.js';
import { keySigner, type AnswerSigner } from './signer.js';
import type { BundleStorage } from './storage/bundle-store.js';
import { openBundleStorage } from './storage/open.js';

/** Everything the routes use besides the config. */
export interface Services {
  store: Store;
  bundles: BundleStorage;
  signer: AnswerSigner;
  /** Keys whose signatures make a bundle acceptable. */
  keyring: Keyring;
  /** Bundles found in storage without a release record at start, and removed. */
  swept: string[];
}

/** Creates the data directory if needed; the error names it. */
export async function ensureDataDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new OtaError('SERVER_DATA_UNUSABLE', `data directory ${dir}: cannot be created (${errorMessage(cause)})`, { cause });
  }
}

/** Opens every service of the data directory named by the config. */
export async function openServices(config: ServerConfig, keyring?: Keyring): Promise<Services> {
  await ensureDataDir(config.data);
  const ring = keyring ?? (await loadKeyring(config.releaseKeys));
  const key = await loadOrCreateServerKey(config.data);
  const bundles = await openBundleStorage(config);
  const store = Store.open(config.data, config.databaseUrl);
  try {
    // A crash between storing a bundle and recording its release leaves a complete but
    // unrecorded file: drop it, so storage holds exactly the recorded releases.
    const swept = await bundles.sweep(store.releases.bundleHashes());
    return { store, bundles, signer: keySigner(key), keyring: ring, swept };
  } catch (err) {
    store.close();
    bundles.close();
    throw err;
  }
}
