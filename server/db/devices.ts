/** Device rows: enrollment, what each check-in reports, tags and attributes, and the fleet views. */
import { OtaError } from '../../shared/errors.js';
import type { CheckinRequest } from '../../shared/protocol.js';
import type { Db } from './open.js';

/** A device as the fleet API shows it. */
export interface DeviceView {
  id: string;
  compatible: string;
  /** Null for a device enrolled before products existed whose product was not clear. */
  product: string | null;
  channel: string;
  /** Set by ops. */
  tags: string[];
  /** As the device last reported them (hardware, site, agent version, slot versions). */
  attributes: Record<string, string>;
  enrolled: string;
  lastSeen: string | null;
  slot: string | null;
  /** Highest committed release, as the device last said. */
  version: string | null;
  state: string | null;
  transaction: { id: string; version: string; state: string } | null;
  lastOutcome: { outcome: string; reason: string | null; version: string; at: string } | null;
  /** Id of a rollback request not yet delivered. */
  pendingRollback: string | null;
}

interface DeviceRow {
  id: string;
  compatible: string;
  product: string | null;
  channel: string;
  tags: string | null;
  attributes: string;
  enrolled: string;
  last_seen: string | null;
  slot: string | null;
  version: string | null;
  state: string | null;
  tx_id: string | null;
  tx_version: string | null;
  tx_state: string | null;
  outcome: string | null;
  outcome_reason: string | null;
  outcome_version: string | null;
  outcome_at: string | null;
  pending: string | null;
}

/** The fields every view of a device starts with, from its row. */
export function deviceIdentity(r: { id: string; compatible: string; product: string | null; channel: string; tags: string | null }) {
  return { id: r.id, compatible: r.compatible, product: r.product, channel: r.channel, tags: r.tags ? r.tags.split('\n').sort() : [] };
}

function view(r: DeviceRow): DeviceView {
  return {
    ...deviceIdentity(r),
    attributes: JSON.parse(r.attributes) as Record<string, string>,
    enrolled: r.enrolled,
    lastSeen: r.last_seen,
    slot: r.slot,
    version: r.version,
    state: r.state,
    transaction: r.tx_id !== null ? { id: r.tx_id, version: r.tx_version ?? '', state: r.tx_state ?? '' } : null,
    lastOutcome: r.outcome !== null ? { outcome: r.outcome, reason: r.outcome_reason, version: r.outcome_version ?? '', at: r.outcome_at ?? '' } : null,
    pendingRollback: r.pending,
  };
}

/** The routing facts a check-in needs about its device. */
export interface DeviceRouting {
  compatible: string;
  product: string | null;
  channel: string;
  /** JSON of the reported attributes. */
  attributes: string;
  /** The device's tags, newline-separated, or null. */
  tags: string | null;
  /** Highest committed release as last reported. */
  version: string | null;
}

/** What the one-statement check-in of a shared database reads besides the routing. */
export interface CheckinRouting extends DeviceRouting {
  /** The rollback request waiting for the device, or null. */
  pending: string | null;
  /** The windows' change count (WindowQueries.forTags), or null before any window. */
  windowsChanges: number | null;
}

/** What the fleet list can be filtered by; every given filter must hold. */
export interface DeviceFilter {
  product?: string;
  channel?: string;
  tags?: readonly string[];
  attributes?: Readonly<Record<string, string>>;
  version?: string;
  compatible?: string;
}

/** True when a device passes a filter. */
export function matchesFilter(d: DeviceView, f: DeviceFilter): boolean {
  if (f.product !== undefined && d.product !== f.product) return false;
  if (f.channel !== undefined && d.channel !== f.channel) return false;
  if (f.version !== undefined && d.version !== f.version) return false;
  if (f.compatible !== undefined && d.compatible !== f.compatible) return false;
  for (const t of f.tags ?? []) if (!d.tags.includes(t)) return false;
  for (const [k, v] of Object.entries(f.attributes ?? {})) if (d.attributes[k] !== v) return false;
  return true;
}

/** Prepared statements over the devices table. */
export class DeviceQueries {
  private readonly insertStmt;
  private readonly replaceStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly routingStmt;
  private readonly checkinStmt;
  private readonly attributesStmt;
  private readonly addTagStmt;
  private readonly removeTagStmt;
  private readonly idsStmt;

  /** PostgreSQL only: records a check-in and reads what it needs in one round trip. */
  private readonly checkinReturning;

  constructor(db: Db, shared = false) {
    this.insertStmt = db.prepare('INSERT INTO devices (id, compatible, product, channel, enrolled) VALUES (?, ?, ?, ?, ?)');
    this.replaceStmt = db.prepare('UPDATE devices SET compatible = ?, product = coalesce(?, product), channel = ?, enrolled = ? WHERE id = ?');
    const tags = `(SELECT group_concat(tag, char(10)) FROM device_tags t WHERE t.device = d.id) AS tags`;
    const select = `SELECT d.*, ${tags}, (SELECT id FROM rollbacks r WHERE r.device = d.id AND r.delivered IS NULL ORDER BY requested LIMIT 1) AS pending FROM devices d`;
    this.getStmt = db.prepare(`${select} WHERE d.id = ?`);
    this.listStmt = db.prepare(`${select} ORDER BY d.id`);
    this.routingStmt = db.prepare(`SELECT compatible, product, channel, attributes, version, ${tags} FROM devices d WHERE id = ?`);
    this.attributesStmt = db.prepare('UPDATE devices SET attributes = ? WHERE id = ?');
    this.addTagStmt = db.prepare('INSERT INTO device_tags (device, tag) VALUES (?, ?) ON CONFLICT DO NOTHING');
    this.removeTagStmt = db.prepare('DELETE FROM device_tags WHERE device = ? AND tag = ?');
    this.idsStmt = db.prepare('SELECT id FROM devices ORDER BY id').pluck();
    this.checkinStmt = db.prepare(
      'UPDATE devices SET last_seen = ?, slot = ?, version = ?, state = ?, tx_id = ?, tx_version = ?, tx_state = ? WHERE id = ?',
    );
    // The attributes are not written by it, so RETURNING gives the ones stored before.
    this.checkinReturning = shared
      ? db.prepare(
          `UPDATE devices d SET last_seen = ?, slot = ?, version = ?, state = ?, tx_id = ?, tx_version = ?, tx_state = ? WHERE id = ?
           RETURNING compatible, product, channel, attributes, version, ${tags},
           (SELECT id FROM rollbacks r WHERE r.device = d.id AND r.delivered IS NULL ORDER BY requested LIMIT 1) AS pending,
           (SELECT n FROM changes WHERE name = 'windows') AS windowsChanges`,
        )
      : null;
  }

  /** True when a device with this id is enrolled. */
  exists(id: string): boolean {
    return this.routingStmt.get(id) !== undefined;
  }

  /** Enrolls a new device; an enrolled id is refused with DEVICE_EXISTS unless `replace`. */
  enroll(id: string, compatible: string, channel: string, replace: boolean, now = new Date(), product: string | null = null): void {
    if (this.exists(id)) {
      if (!replace) throw new OtaError('DEVICE_EXISTS', `device ${id}: already enrolled`);
      // Re-enrollment keeps the device's history; only its identity facts are renewed.
      this.replaceStmt.run(compatible, product, channel, now.toISOString(), id);
      return;
    }
    this.insertStmt.run(id, compatible, product, channel, now.toISOString());
  }

  /** Every device id. */
  ids(): string[] {
    return this.idsStmt.all() as string[];
  }

  /** Adds and removes tags of a device (which must exist). */
  tag(id: string, add: readonly string[], remove: readonly string[]): void {
    if (!this.exists(id)) throw new OtaError('DEVICE_NOT_FOUND', `device ${id}: not enrolled`);
    for (const t of add) this.addTagStmt.run(id, t);
    for (const t of remove) this.removeTagStmt.run(id, t);
  }

  /** One device, or undefined. */
  get(id: string): DeviceView | undefined {
    const row = this.getStmt.get(id) as DeviceRow | undefined;
    return row && view(row);
  }

  /** The whole fleet (or the devices passing `filter`), by id. */
  list(filter: DeviceFilter = {}): DeviceView[] {
    return (this.listStmt.all() as DeviceRow[]).map(view).filter((d) => matchesFilter(d, filter));
  }

  /** Compatible type and channel of a device, or undefined. */
  routing(id: string): DeviceRouting | undefined {
    return this.routingStmt.get(id) as DeviceRouting | undefined;
  }

  /**
   * Records what a check-in says about the device; `previous` is the attributes JSON stored
   * before (from `routing`). On a shared database (PostgreSQL) the same round trip also reads
   * and returns the device's routing, its waiting rollback request and the windows' change
   * count (no `routing` call needed), or undefined when the device is not enrolled; on SQLite
   * it returns undefined.
   */
  recordCheckin(id: string, c: CheckinRequest, now: Date, previous?: string): CheckinRouting | undefined {
    const tx = c.transaction;
    const values = [now.toISOString(), c.slot, c.version, c.state, tx?.id ?? null, tx?.version ?? null, tx?.state ?? null, id];
    let r: CheckinRouting | undefined;
    if (this.checkinReturning) {
      r = this.checkinReturning.get(...values) as CheckinRouting | undefined;
      if (!r) return undefined;
    } else this.checkinStmt.run(...values);
    if (c.attributes) {
      const json = JSON.stringify(Object.fromEntries(Object.entries(c.attributes).sort(([a], [b]) => (a < b ? -1 : 1))));
      // Attributes change rarely: written only when they did.
      if (json !== (r ? r.attributes : previous)) this.attributesStmt.run(json, id);
    }
    return r;
  }
}
