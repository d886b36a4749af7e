/**
 * Opens the server database on PostgreSQL (config `databaseUrl`) and brings its schema up to
 * date: every instance starting at once migrates under the write lock, one after the other, so
 * each step runs once.
 */
import { OtaError } from '../../shared/errors.js';
import type { Migration } from './migrations.js';
import type { Db } from './open.js';
import { PG_MIGRATIONS } from './pg-migrations.js';
import { PgDatabase, isPostgresUrl, redact } from './pg-sync.js';

/** Connects to `url` and migrates; the handle has the shape of better-sqlite3's. */
export function openPostgres(url: string, migrations: readonly Migration[] = PG_MIGRATIONS): Db {
  if (!isPostgresUrl(url)) throw new OtaError('SERVER_DB_URL_INVALID', `databaseUrl ${redact(url)}: not a postgres:// URL`);
  const db = new PgDatabase(url);
  try {
    db.transaction(() => {
      db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)');
      const current = (db.prepare('SELECT max(version) FROM migrations').pluck().get() as number | null) ?? 0;
      const latest = migrations.at(-1)?.version ?? 0;
      if (current > latest) {
        throw new OtaError('SERVER_DB_TOO_NEW', `database ${db.name}: schema version ${current} is newer than this server knows (${latest})`);
      }
      const record = db.prepare('INSERT INTO migrations (version, name, applied) VALUES (?, ?, ?)');
      for (const m of migrations) {
        if (m.version <= current) continue;
        db.exec(m.sql);
        record.run(m.version, m.name, new Date().toISOString());
      }
    }).immediate();
  } catch (err) {
    db.close();
    throw err;
  }
  return db as unknown as Db;
}
