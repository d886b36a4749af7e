/** Maintenance windows: named, each for one group of devices (a tag). */
import { OtaError } from '../../shared/errors.js';
import type { Day, MaintenanceWindow } from '../../shared/windows.js';
import type { Db } from './open.js';

/** A window as the API shows it. */
export interface WindowView extends MaintenanceWindow {
  name: string;
  tag: string;
  updated: string;
}

interface WindowRow {
  name: string;
  tag: string;
  days: string;
  start: string;
  duration_minutes: number;
  time_zone: string;
  updated: string;
}

function view(r: WindowRow): WindowView {
  return { name: r.name, tag: r.tag, days: JSON.parse(r.days) as Day[], start: r.start, durationMinutes: r.duration_minutes, timeZone: r.time_zone, updated: r.updated };
}

/** Prepared statements over the windows table. */
export class WindowQueries {
  private readonly putStmt;
  private readonly deleteStmt;
  private readonly listStmt;
  private readonly countStmt;
  /** The windows of a tag, cached until a window changes (every check-in asks). */
  private byTag: Map<string, MaintenanceWindow[]> | undefined;
  private readonly changeStmt;
  private readonly bumpStmt;
  /** The change count the cache was built at (shared databases only). */
  private seen = -1;

  /**
   * `shared`: other server instances write the same database (PostgreSQL), so the cache is
   * checked against the change count they bump with every window they put or delete.
   */
  constructor(
    db: Db,
    private readonly shared = false,
  ) {
    this.changeStmt = db.prepare("SELECT n FROM changes WHERE name = 'windows'").pluck();
    this.bumpStmt = db.prepare("INSERT INTO changes (name, n) VALUES ('windows', 1) ON CONFLICT (name) DO UPDATE SET n = changes.n + 1");
    this.putStmt = db.prepare(
      `INSERT INTO windows (name, tag, days, start, duration_minutes, time_zone, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET tag = excluded.tag, days = excluded.days, start = excluded.start,
       duration_minutes = excluded.duration_minutes, time_zone = excluded.time_zone, updated = excluded.updated`,
    );
    this.deleteStmt = db.prepare('DELETE FROM windows WHERE name = ?');
    this.listStmt = db.prepare('SELECT * FROM windows ORDER BY name');
    this.countStmt = db.prepare('SELECT count(*) FROM windows').pluck();
  }

  /** Creates or replaces a window. */
  put(name: string, tag: string, w: MaintenanceWindow, now = new Date()): WindowView {
    this.putStmt.run(name, tag, JSON.stringify(w.days), w.start, w.durationMinutes, w.timeZone, now.toISOString());
    this.bumpStmt.run();
    this.byTag = undefined;
    return { name, tag, ...w, updated: now.toISOString() };
  }

  /** Deletes a window; an unknown name is WINDOW_NOT_FOUND. */
  remove(name: string): void {
    if (this.deleteStmt.run(name).changes === 0) throw new OtaError('WINDOW_NOT_FOUND', `maintenance window ${name}: no such window`);
    this.bumpStmt.run();
    this.byTag = undefined;
  }

  /** Every window. */
  list(): WindowView[] {
    return (this.listStmt.all() as WindowRow[]).map(view);
  }

  /**
   * The windows that apply to a device with these tags (none: it may install any time).
   * `changes`: the change count when the caller read it already (null: no window ever put).
   */
  forTags(tags: readonly string[], changes?: number | null): MaintenanceWindow[] {
    if (this.shared) {
      const n = changes !== undefined ? (changes ?? 0) : ((this.changeStmt.get() as number | undefined) ?? 0);
      if (n !== this.seen) this.byTag = undefined;
      this.seen = n;
    }
    if (!this.byTag) {
      this.byTag = new Map();
      if ((this.countStmt.get() as number) > 0) {
        for (const w of this.list()) {
          const list = this.byTag.get(w.tag) ?? [];
          list.push({ days: w.days, start: w.start, durationMinutes: w.durationMinutes, timeZone: w.timeZone });
          this.byTag.set(w.tag, list);
        }
      }
    }
    if (this.byTag.size === 0) return [];
    return tags.flatMap((t) => this.byTag!.get(t) ?? []);
  }
}
