/** The server's database as one service: the handle, its query groups and transactions. */
import { join } from 'node:path';
import { DeviceQueries } from './devices.js';
import { openDatabase, type Db } from './open.js';
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

  constructor(readonly db: Db) {
    this.tokens = new TokenQueries(db);
    this.releases = new ReleaseQueries(db);
    this.devices = new DeviceQueries(db);
    this.rollbacks = new RollbackQueries(db);
    this.rollouts = new RolloutQueries(db);
    this.windows = new WindowQueries(db);
    // In the report's own transaction: rollout counts and rollback outcomes move with it.
    this.reports = new ReportQueries(db, (device, r, now) => {
      this.rollouts.onReport(device, r, now);
      this.rollbacks.onReport(device, r, now);
    });
  }

  /** Opens the database of a data directory (which must exist). */
  static open(dataDir: string): Store {
    return new Store(openDatabase(join(dataDir, DB_FILE)));
  }

  /** Runs `fn` in one write transaction (taken at once, so concurrent writers queue, not fail). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Closes the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
