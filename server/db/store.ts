/** The server's database as one service: the handle, its query groups and transactions. */
import { join } from 'node:path';
import { DeviceQueries } from './devices.js';
import { openDatabase, type Db } from './open.js';
import { openPostgres } from './pg-open.js';
import { PgDatabase } from './pg-sync.js';
import { ReleaseQueries } from './releases.js';
import { ReportQueries } from './reports.js';
import { RollbackQueries } from './rollbacks.js';
import { RolloutQueries } from './rollouts.js';
import { WindowQueries } from './windows.js';
import { TokenQueries } from './tokens.js';

/** The database file inside a data directory. */
export const DB_FILE = 'server.db';

/** Every query group over one open database. */
export class Store {
  readonly tokens: TokenQueries;
  readonly releases: ReleaseQueries;
  readonly devices: DeviceQueries;
  readonly reports: ReportQueries;
  readonly rollbacks: RollbackQueries;
  readonly rollouts: RolloutQueries;
  readonly windows: WindowQueries;
  /** Which engine holds the data: SQLite in the data directory, or PostgreSQL (databaseUrl). */
  readonly engine: 'sqlite' | 'postgres';

  constructor(readonly db: Db) {
    this.engine = (db as unknown) instanceof PgDatabase ? 'postgres' : 'sqlite';
    this.tokens = new TokenQueries(db);
    this.releases = new ReleaseQueries(db);
    this.devices = new DeviceQueries(db, this.engine === 'postgres');
    this.rollbacks = new RollbackQueries(db);
    this.rollouts = new RolloutQueries(db, this.engine === 'postgres');
    this.windows = new WindowQueries(db, this.engine === 'postgres');
    // In the report's own transaction: rollout counts and rollback outcomes move with it.
    this.reports = new ReportQueries(db, (device, r, now) => {
      this.rollouts.onReport(device, r, now);
      this.rollbacks.onReport(device, r, now);
    });
  }

  /**
   * Opens the database of a data directory (which must exist), or the PostgreSQL database at
   * `databaseUrl` when one is given (config `databaseUrl`).
   */
  static open(dataDir: string, databaseUrl: string | null = null): Store {
    return new Store(databaseUrl ? openPostgres(databaseUrl) : openDatabase(join(dataDir, DB_FILE)));
  }

  /** Runs `fn` in one write transaction (taken at once, so concurrent writers queue, not fail). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * The check-in's transaction. On SQLite the usual immediate one. On PostgreSQL it takes no
   * cluster-wide write lock, so the check-ins of all instances run side by side: what it must do
   * once it does with row locks and conditional writes (a rollback delivered only while
   * `delivered IS NULL`, a member joined with ON CONFLICT DO NOTHING, marked offered only while
   * waiting), and the rollout evaluations it may trigger run after it, under the lock
   * (RolloutQueries.applyDue).
   */
  checkinTransaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (this.db as unknown) instanceof PgDatabase ? (this.db as unknown as PgDatabase).transaction(fn).rowLocked : this.db.transaction(fn).immediate;
  }

  /** Closes the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
