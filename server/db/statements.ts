/** Prepared statements by name: a query class states its SQL once, as a table, and gets them all prepared. */
import type Database from 'better-sqlite3';
import type { Db } from './open.js';

/** Prepares every statement of `sql` once, keyed as given. */
export function prepareAll<K extends string>(db: Db, sql: Readonly<Record<K, string>>): Readonly<Record<K, Database.Statement>> {
  const out = {} as Record<K, Database.Statement>;
  for (const key of Object.keys(sql) as K[]) out[key] = db.prepare(sql[key]);
  return Object.freeze(out);
}
