/**
 * Opens the agent's SQLite store: WAL with synchronous=FULL, so a committed write survives a
 * power cut, and migrations up to the schema this agent knows. Every write goes through
 * `write`, one SQLite transaction each, announced as a durable write (agent/infra/durable.ts).
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { durably, type DurableKind } from '../infra/durable.js';
import { MIGRATIONS } from './migrations.js';

/** The database handle type used by the query modules. */
export type Db = Database.Database;

/** File name of the store inside dataDir. */
export const STORE_FILE = 'agent.db';

function fail(what: string, cause: unknown): never {
  if (isOtaError(cause)) throw cause;
  throw new OtaError('STORE_FAILED', `store: ${what} failed (${errorMessage(cause)})`, { cause });
}

/** Brings the schema up to date; refuses a store from a newer agent. */
function migrate(db: Db, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new OtaError('STORE_TOO_NEW', `store ${path}: schema version ${version}, this agent knows up to ${MIGRATIONS.length}`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * better-sqlite3's native module, by path. Given to `new Database`, it spares the `bindings`
 * package's search (a dozen paths tried, found from a stack trace), and it is what lets the
 * bundled agent inline better-sqlite3's JavaScript (scripts/bundle.ts): only the native module
 * is then read from `node_modules/` at start-up. Undefined where it is not at the usual place:
 * better-sqlite3 then finds it itself.
 */
function nativeBinding(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');
  } catch {
    return undefined;
  }
}

/** An open store: the handle and the durable write wrapper. */
export class StoreDb {
  private constructor(
    readonly db: Db,
    readonly path: string,
  ) {}

  /** Opens (creating if needed) the store in `dataDir`. */
  static open(dataDir: string): StoreDb {
    const path = join(dataDir, STORE_FILE);
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const binding = nativeBinding();
      const db = new Database(path, binding ? { nativeBinding: binding } : {});
      // Another ota-agent process (daemon and technician) may hold the write lock briefly.
      db.pragma('busy_timeout = 10000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db, path);
      return new StoreDb(db, path);
    } catch (cause) {
      return fail(`opening ${path}`, cause);
    }
  }

  /** Runs `fn` as one SQLite transaction and announces the commit as a durable write. */
  write<T>(what: string, fn: (db: Db) => T, kind: DurableKind = 'store'): T {
    try {
      return durably(kind, what, () => this.db.transaction(() => fn(this.db)).immediate());
    } catch (cause) {
      return fail(what, cause);
    }
  }

  /** Runs a read query, wrapping driver errors. */
  read<T>(what: string, fn: (db: Db) => T): T {
    try {
      return fn(this.db);
    } catch (cause) {
      return fail(what, cause);
    }
  }

  /** Closes the handle. */
  close(): void {
    this.db.close();
  }
}
