/**
 * Opens the server database: WAL so readers never wait for the writer, synchronous=FULL so a
 * committed release, enrollment or report survives a power cut, and the migrations table that
 * upgrades the schema step by step.
 */
import Database from 'better-sqlite3';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';

/** The database handle every query module takes. */
export type Db = Database.Database;

/** Opens (creating if needed) the database at `file` and brings its schema up to date. */
export function openDatabase(file: string, migrations: readonly Migration[] = MIGRATIONS): Db {
  let db: Db;
  try {
    db = new Database(file);
  } catch (cause) {
    throw new OtaError('SERVER_DATA_UNUSABLE', `database ${file}: cannot be opened (${errorMessage(cause)})`, { cause });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // `ota-server token` writes while the server runs: wait for the lock rather than fail.
    db.pragma('busy_timeout = 5000');
    migrate(db, migrations, file);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

function migrate(db: Db, migrations: readonly Migration[], file: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL) STRICT');
  const current = (db.prepare('SELECT max(version) FROM migrations').pluck().get() as number | null) ?? 0;
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new OtaError('SERVER_DB_TOO_NEW', `database ${file}: schema version ${current} is newer than this server knows (${latest})`);
  }
  const record = db.prepare('INSERT INTO migrations (version, name, applied) VALUES (?, ?, ?)');
  const version = db.prepare('SELECT max(version) FROM migrations').pluck();
  for (const m of migrations) {
    if (m.version <= current) continue;
    // Each step and its record commit together: a crash leaves the schema at a known version.
    // The version is read again under the write lock: `ota-server token` may be migrating a
    // new data directory at the same moment as the server.
    db.transaction(() => {
      if (((version.get() as number | null) ?? 0) >= m.version) return;
      db.exec(m.sql);
      record.run(m.version, m.name, new Date().toISOString());
    }).immediate();
  }
}
