/**
 * PostgreSQL behind the same synchronous handle the query groups use with SQLite.
 *
 * The query groups are written against better-sqlite3's synchronous API (prepare, run/get/all,
 * pluck, transaction). node-postgres is asynchronous, so this module runs one `pg` client in a
 * worker thread and waits for each answer with `Atomics.wait` (sync-channel.ts: the answer
 * itself is taken with `receiveMessageOnPort`). The event loop of the server stops for the length of one round trip
 * to the database, as it stops for one SQLite statement today: statements of one process run
 * one after the other, never interleaved, which is what the query groups were written for.
 *
 * SQL is written once, in the dialect both engines understand; `translate` rewrites the few
 * SQLite spellings the query groups use (`?` placeholders, `group_concat`, a NULL test on an
 * untyped parameter, camelCase aliases that PostgreSQL would fold to lower case).
 *
 * Write transactions ("immediate" in SQLite: one writer at a time) take a transaction-scoped
 * advisory lock, so write transactions of every instance on the database run one at a time,
 * exactly as on SQLite: what must happen once (a rollback delivered, a phase advanced, a
 * rollout paused, a device enrolled) happens once however many instances share the database.
 * The check-in alone runs without it (`rowLocked`, Store.checkinTransaction): its once-only
 * steps are conditional writes and row locks, so check-ins of all instances run side by side.
 */
import { createRequire } from 'node:module';
import { OtaError } from '../../shared/errors.js';
import { SyncChannel, WORKER_ANSWER } from './sync-channel.js';

/** The advisory lock key every write transaction holds (any constant; "otaab" in ASCII). */
export const WRITE_LOCK_KEY = 0x6f74_6161_62;

/** How long one statement may take before the server gives up on the database, ms. */
const STATEMENT_TIMEOUT_MS = 60_000;

/**
 * The names of the prepared statements, one per distinct text, the same in every connection.
 * A text with `*` stays unnamed: its result's columns are the table's, which a migration run
 * by another instance may change under a plan cached in this connection.
 */
const names = new Map<string, string>();
function nameOf(text: string): string | undefined {
  if (/(^|[\s,])(\w+\.)?\*(\s|,|$)/.test(text)) return undefined;
  let name = names.get(text);
  if (name === undefined) {
    name = `otaab_${names.size + 1}`;
    names.set(text, name);
  }
  return name;
}

/** What the worker answers for one statement. */
interface Answer {
  rows?: Record<string, unknown>[];
  fields?: string[];
  rowCount?: number;
  error?: { message: string; code?: string };
  /** The statement's number in this handle (SyncChannel). */
  seq?: number;
}

// The worker, as CommonJS source: vitest runs the TypeScript sources and `dist` the compiled
// ones, and an inline worker is the same in both.
const WORKER = `${WORKER_ANSWER}
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pg);
pg.types.setTypeParser(20, (v) => Number(v));     // int8: counts, sizes (< 2^53)
pg.types.setTypeParser(1700, (v) => Number(v));   // numeric: sums
const port = workerData.port;
let client = null;
async function connected() {
  if (client) return client;
  const c = new pg.Client({ connectionString: workerData.url, application_name: 'ota-server' });
  c.on('error', () => { if (client === c) client = null; });
  await c.connect();
  client = c;
  return c;
}
function reply(m, answer) {
  answer.seq = m.seq;
  answered(answer);
}
port.on('message', async (m) => {
  if (m.close) {
    try { if (client) await client.end(); } catch {}
    client = null;
    reply(m, { rowCount: 0 });
    return;
  }
  try {
    const c = await connected();
    const values = m.params.map((v) => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v));
    // A statement begun lazily (BEGIN and the first statement of a transaction in one hand-off).
    if (m.pre) await c.query(m.pre);
    // Named: the connection parses and plans each statement of the query groups once.
    const r = await c.query(m.name ? { name: m.name, text: m.sql, values } : { text: m.sql, values });
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    reply(m, { rows: last.rows, fields: (last.fields || []).map((f) => f.name), rowCount: last.rowCount ?? 0 });
  } catch (e) {
    // A broken connection is dropped: the next statement opens a new one.
    if (client && (e.code === undefined || /^(08|57P|E[A-Z]+$)/.test(String(e.code)))) {
      const c = client; client = null; c.end().catch(() => {});
    }
    reply(m, { error: { message: String(e && e.message || e), code: e && e.code } });
  }
});
`;

/** Rewrites the SQLite spellings of the query groups' SQL for PostgreSQL. */
export function translate(sql: string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      const end = sql.indexOf(ch, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (ch === '?') {
      n++;
      // An untyped parameter tested for NULL (`? IS NULL`): PostgreSQL must know its type.
      out += /^\s+IS\s+(NOT\s+)?NULL/i.test(sql.slice(i + 1)) ? `$${n}::text` : `$${n}`;
    } else out += ch;
  }
  return out
    .replace(/group_concat\(([^,()]+),\s*char\(10\)\)/gi, 'string_agg($1, chr(10))')
    .replace(/\bAS\s+([a-z][a-z0-9_]*[A-Z][A-Za-z0-9_]*)/g, 'AS "$1"');
}

/** Turns what crossed the thread boundary back into what better-sqlite3 would return. */
function normalise(row: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(row)) {
    const v = row[k];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    else if (typeof v === 'boolean') row[k] = v ? 1 : 0;
  }
  return row;
}

/** The error a failed statement becomes: constraint violations keep PostgreSQL's code. */
export class PgError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'PgError';
  }
}

/** One prepared statement, better-sqlite3 style. */
export class PgStatement {
  private plucked = false;
  private readonly text: string;
  private readonly noop: boolean;
  private readonly name: string | undefined;

  constructor(
    private readonly db: PgDatabase,
    readonly source: string,
  ) {
    this.noop = /^\s*PRAGMA\b/i.test(source);
    this.text = this.noop ? '' : translate(source);
    this.name = this.noop ? undefined : nameOf(this.text);
  }

  /** Return the first column of each row instead of the row. */
  pluck(on = true): this {
    this.plucked = on;
    return this;
  }

  private exec(params: unknown[]): Answer {
    if (this.noop) {
      // SQLite's commit mode (server/checkin.ts) maps to PostgreSQL's synchronous_commit.
      const mode = /^\s*PRAGMA\s+synchronous\s*=\s*(\w+)/i.exec(this.source)?.[1]?.toUpperCase();
      if (mode !== undefined) this.db.relaxed = mode === 'NORMAL' || mode === 'OFF';
      return { rows: [], fields: [], rowCount: 0 };
    }
    return this.db.query(this.text, params, this.name);
  }

  run(...params: unknown[]): { changes: number; lastInsertRowid: number } {
    return { changes: this.exec(params).rowCount ?? 0, lastInsertRowid: 0 };
  }

  get(...params: unknown[]): unknown {
    const a = this.exec(params);
    const row = a.rows?.[0];
    if (!row) return undefined;
    normalise(row);
    return this.plucked ? row[a.fields![0]!] : row;
  }

  all(...params: unknown[]): unknown[] {
    const a = this.exec(params);
    const rows = (a.rows ?? []).map(normalise);
    return this.plucked ? rows.map((r) => r[a.fields![0]!]) : rows;
  }
}

/** A transaction function, better-sqlite3 style: call it, or `.immediate` / `.deferred` it. */
export type PgTransaction<A extends unknown[], R> = ((...args: A) => R) & {
  immediate: (...args: A) => R;
  deferred: (...args: A) => R;
  exclusive: (...args: A) => R;
  /**
   * Without the cluster-wide write lock: for a transaction whose once-only steps are kept once
   * by row locks and conditional writes (the check-in), so instances run it side by side. A
   * deadlock with another transaction on the same rows (PostgreSQL aborts one of the two) runs
   * it again, up to three times in all.
   */
  rowLocked: (...args: A) => R;
};

/** The synchronous PostgreSQL handle. */
export class PgDatabase {
  open = true;
  readonly name: string;
  private readonly channel: SyncChannel<Answer>;
  private depth = 0;
  /** The BEGIN of the open transaction, until its first statement carries it to the worker. */
  private pendingBegin: string | null = null;
  /**
   * Commit without waiting for the WAL flush (synchronous_commit = off), as SQLite's
   * synchronous=NORMAL does for plain check-ins: a crash of the database loses at most the
   * last such commits (what the device says again at its next check-in), never corrupts, and
   * the next durable commit flushes them too. Set through `PRAGMA synchronous` statements.
   */
  relaxed = false;

  constructor(url: string) {
    this.name = redact(url);
    this.channel = new SyncChannel<Answer>(WORKER, { url, pg: createRequire(import.meta.url).resolve('pg') });
  }

  /**
   * Runs one statement and waits for its answer; `name` prepares it once per connection. A
   * transaction's BEGIN waiting to be sent goes in the same hand-off to the worker.
   */
  query(text: string, params: unknown[] = [], name?: string): Answer {
    if (!this.open) throw new OtaError('SERVER_DB_UNAVAILABLE', `database ${this.name}: the connection is closed`);
    const pre = this.pendingBegin;
    this.pendingBegin = null;
    const a = this.roundTrip({ pre, name, sql: text, params: params.map((v) => (v === undefined ? null : v)) });
    if (a.error) {
      // Connection classes (08, 57P: shutdown) and Node's socket errors (ECONNREFUSED, ETIMEDOUT...).
      if (a.error.code === undefined || /^(08|57P|E[A-Z]+$)/.test(a.error.code)) {
        throw new OtaError('SERVER_DB_UNAVAILABLE', `database ${this.name}: ${a.error.message}`);
      }
      throw new PgError(`${a.error.message} (in: ${text.replace(/\s+/g, ' ').slice(0, 200)})`, a.error.code);
    }
    return a;
  }

  private roundTrip(msg: object): Answer {
    const answer = this.channel.call(msg, STATEMENT_TIMEOUT_MS);
    // Given up on, the statement may still hold locks in an open transaction: the channel
    // replaced the worker, whose connection closing makes the database abort that transaction.
    if (answer === undefined) throw new OtaError('SERVER_DB_UNAVAILABLE', `database ${this.name}: no answer within ${STATEMENT_TIMEOUT_MS / 1000} s`);
    return answer;
  }

  prepare(sql: string): PgStatement {
    return new PgStatement(this, sql);
  }

  /** Runs several statements (migrations). */
  exec(sql: string): void {
    this.query(sql);
  }

  /** SQLite pragmas mean nothing here. */
  pragma(): unknown[] {
    return [];
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): PgTransaction<A, R> {
    const make =
      (lock: boolean) =>
      (...args: A): R =>
        this.run(lock, () => fn(...args));
    const t = make(true) as PgTransaction<A, R>;
    t.immediate = make(true);
    t.exclusive = make(true);
    // A "deferred" transaction of the query groups also writes (reports): it queues like the others.
    t.deferred = make(true);
    t.rowLocked = (...args: A): R => {
      for (let attempt = 1; ; attempt++) {
        try {
          return this.run(false, () => fn(...args));
        } catch (err) {
          if (this.depth > 0 || attempt >= 3 || !(err instanceof PgError) || err.code !== '40P01') throw err;
        }
      }
    };
    return t;
  }

  private run<R>(lock: boolean, fn: () => R): R {
    if (this.depth > 0) {
      // Nested: a savepoint, as better-sqlite3 does.
      const sp = `sp${this.depth}`;
      this.query(`SAVEPOINT ${sp}`);
      this.depth++;
      try {
        const r = fn();
        this.query(`RELEASE SAVEPOINT ${sp}`);
        return r;
      } catch (err) {
        this.query(`ROLLBACK TO SAVEPOINT ${sp}`);
        throw err;
      } finally {
        this.depth--;
      }
    }
    // BEGIN and the lock as one simple-protocol query, sent with the first statement.
    this.pendingBegin = lock ? `BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK_KEY})` : 'BEGIN';
    this.depth++;
    try {
      const r = fn();
      // A transaction that ran no statement never began.
      if (this.pendingBegin === null) this.query(this.relaxed ? 'SET LOCAL synchronous_commit = off; COMMIT' : 'COMMIT');
      return r;
    } catch (err) {
      if (this.pendingBegin === null) {
        try {
          this.query('ROLLBACK');
        } catch {
          // The connection is gone; so is the transaction.
        }
      }
      throw err;
    } finally {
      this.pendingBegin = null;
      this.depth--;
    }
  }

  close(): void {
    if (!this.open) return;
    try {
      this.roundTrip({ close: true });
    } finally {
      this.open = false;
      this.channel.terminate();
    }
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** True for a PostgreSQL connection URL. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}
