/**
 * The data directory's life cycle: `ota-server init` makes one; every other command opens only
 * a directory that `init` made (a typo in --data must not provision a fleet with a fresh,
 * wrong server key); `ota-server backup` copies one consistently while the server runs.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { OtaError, errorMessage } from '../shared/errors.js';
import { fsyncPath } from '../shared/fsync.js';
import { DB_FILE, Store } from './db/store.js';
import { SERVER_KEY_FILE, SERVER_PUB_FILE, loadOrCreateServerKey } from './server-key.js';
import { BundleStore } from './storage/bundle-store.js';

/** What a data directory may hold; `init` refuses a directory with anything else in it. */
const OWN_ENTRIES = new Set([DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`, SERVER_KEY_FILE, SERVER_PUB_FILE, `.${SERVER_KEY_FILE}.tmp`, `.${SERVER_PUB_FILE}.tmp`, 'bundles', 'tmp']);

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `dir` was initialised: it holds the server key and the database, or, with the
 * database in PostgreSQL (databaseUrl), the bundles directory `init` made beside the key.
 */
export async function isInitialised(dir: string): Promise<boolean> {
  return (await exists(join(dir, SERVER_KEY_FILE))) && ((await exists(join(dir, DB_FILE))) || (await exists(join(dir, 'bundles'))));
}

/** Refuses a data directory that `ota-server init` did not make (exit 1, naming the path). */
export async function requireInitialised(dir: string): Promise<void> {
  if (await isInitialised(dir)) return;
  const why = (await exists(dir)) ? 'holds no server.db and server-key.asc' : 'does not exist';
  throw new OtaError('SERVER_DATA_NOT_INITIALISED', `data directory ${dir} ${why}: check --data, or create it with 'ota-server init --data ${dir}'`);
}

/** What `initDataDir` did. */
export interface InitResult {
  created: boolean;
  fingerprint: string;
}

/**
 * Makes `dir` a data directory: the directory (mode 0700), the server key, the database with
 * its schema, bundles/ and tmp/. An initialised directory is left as it is; a directory holding
 * anything else is refused.
 */
export async function initDataDir(dir: string, databaseUrl: string | null = null): Promise<InitResult> {
  const already = await isInitialised(dir);
  if (!already) {
    let entries: string[] = [];
    try {
      entries = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new OtaError('SERVER_DATA_UNUSABLE', `data directory ${dir}: cannot be read (${errorMessage(err)})`, { cause: err });
      }
    }
    const foreign = entries.filter((e) => !OWN_ENTRIES.has(e));
    if (foreign.length > 0) {
      throw new OtaError('SERVER_DATA_NOT_EMPTY', `data directory ${dir} holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}: give an empty or new directory`);
    }
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new OtaError('SERVER_DATA_UNUSABLE', `data directory ${dir}: cannot be created (${errorMessage(cause)})`, { cause });
    }
  }
  const key = await loadOrCreateServerKey(dir);
  await BundleStore.open(dir);
  Store.open(dir, databaseUrl).close();
  return { created: !already, fingerprint: key.fingerprint };
}

/** What `backupDataDir` copied. */
export interface BackupResult {
  out: string;
  bundles: number;
  bytes: number;
}

/**
 * Copies the data directory `dir` to `out` (which must not exist) while a server may be using
 * it: the database through SQLite's online backup (a snapshot of one moment), then exactly the
 * bundles that snapshot records (bundles are immutable and content-addressed, so a copy made
 * later is still the same bytes) and the server key. The copy is assembled beside `out` and
 * renamed into place last: an interrupted backup never looks like a complete one. With
 * `bundlesElsewhere` (bundles in an object store) that function handles the recorded bundles
 * instead of the copy, and `bytes` is 0.
 */
export async function backupDataDir(dir: string, out: string, bundlesElsewhere?: (hashes: string[], work: string) => Promise<void>): Promise<BackupResult> {
  await requireInitialised(dir);
  if (await exists(out)) throw new OtaError('SERVER_BACKUP_FAILED', `backup ${out}: already exists; name a new directory`);
  let work: string;
  try {
    work = await mkdtemp(join(dirname(out), `.${basename(out)}.partial-`));
  } catch (cause) {
    throw new OtaError('SERVER_BACKUP_FAILED', `backup ${out}: cannot create it beside its parent (${errorMessage(cause)})`, { cause });
  }
  try {
    const src = new Database(join(dir, DB_FILE), { readonly: true, fileMustExist: true });
    try {
      src.pragma('busy_timeout = 5000');
      await src.backup(join(work, DB_FILE));
    } finally {
      src.close();
    }
    const copy = new Database(join(work, DB_FILE));
    let hashes: string[];
    try {
      // A backup is a plain database file, not a WAL pair.
      copy.pragma('journal_mode = DELETE');
      hashes = [...new Store(copy).releases.bundleHashes()];
    } finally {
      copy.close();
    }
    await mkdir(join(work, 'bundles'));
    await mkdir(join(work, 'tmp'));
    let bytes = 0;
    // Bundles in an object store stay there (storage/backup-s3.ts lists them instead).
    if (bundlesElsewhere) await bundlesElsewhere(hashes, work);
    for (const sha of bundlesElsewhere ? [] : hashes) {
      await copyFile(join(dir, 'bundles', sha), join(work, 'bundles', sha), constants.COPYFILE_EXCL);
      bytes += (await stat(join(work, 'bundles', sha))).size;
    }
    for (const f of [SERVER_KEY_FILE, SERVER_PUB_FILE]) await copyFile(join(dir, f), join(work, f), constants.COPYFILE_EXCL);
    await fsyncPath(join(work, 'bundles'));
    await fsyncPath(work);
    await rename(work, out);
    await fsyncPath(dirname(out));
    return { out, bundles: hashes.length, bytes };
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    if (err instanceof OtaError) throw err;
    throw new OtaError('SERVER_BACKUP_FAILED', `backup of ${dir} to ${out}: ${errorMessage(err)}`, { cause: err });
  }
}
