/**
 * The PostgreSQL pass of the tests: with OTAAB_TEST_DATABASE_URL set (a database the role may
 * create schemas in), every server data directory the tests make gets its own fresh schema in
 * that database, named after the directory, so the in-process test servers, `ota-server`
 * processes and `ota-server token` runs on the same directory all meet the same data, and no
 * two data directories see each other's. Without the variable the servers use SQLite.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { PgDatabase } from '../../server/db/pg-sync.js';

/** The variable that turns the PostgreSQL pass on. */
export const TEST_DATABASE_ENV = 'OTAAB_TEST_DATABASE_URL';

const made = new Set<string>();

/** The schema name of a data directory. */
export function schemaOf(data: string): string {
  return `t_${createHash('sha256').update(resolve(data)).digest('hex').slice(0, 24)}`;
}

/** A URL whose connections use `schema` (created if missing) of the database at `base`. */
export function schemaUrl(base: string, schema: string): string {
  if (!made.has(`${base} ${schema}`)) {
    const admin = new PgDatabase(base);
    try {
      admin.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } finally {
      admin.close();
    }
    made.add(`${base} ${schema}`);
  }
  const u = new URL(base);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

/** The database URL the server of `data` uses in this test run, or null (SQLite). */
export function testDatabaseUrl(data: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const base = env[TEST_DATABASE_ENV];
  if (!base) return null;
  if (!/^postgres(ql)?:\/\/[^\s]+$/.test(base)) {
    // Caught before any test meets it: a caller that took more than the URL from postgres.sh.
    throw new Error(`${TEST_DATABASE_ENV} is not one postgres:// URL: ${JSON.stringify(base.slice(0, 200))}`);
  }
  return schemaUrl(base, schemaOf(data));
}

/** The environment that points an `ota-server` process on `data` at its test database (empty: SQLite). */
export function testDatabaseEnv(data: string): Record<string, string> {
  const url = testDatabaseUrl(data);
  return url ? { OTA_SERVER_DATABASE_URL: url } : {};
}

/** True in the PostgreSQL pass (tests of SQLite-only behaviour skip themselves). */
export const ON_POSTGRES = Boolean(process.env[TEST_DATABASE_ENV]);
