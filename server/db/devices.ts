/** Device rows: enrollment, what each check-in reports, and the fleet views. */
import { OtaError } from '../../shared/errors.js';
import type { CheckinRequest } from '../../shared/protocol.js';
import type { Db } from './open.js';

/** A device as the fleet API shows it. */
export interface DeviceView {
  id: string;
  compatible: string;
  channel: string;
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
  channel: string;
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

function view(r: DeviceRow): DeviceView {
  return {
    id: r.id,
    compatible: r.compatible,
    channel: r.channel,
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
  channel: string;
}

/** Prepared statements over the devices table. */
export class DeviceQueries {
  private readonly insertStmt;
  private readonly replaceStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly routingStmt;
  private readonly checkinStmt;

  constructor(db: Db) {
    this.insertStmt = db.prepare('INSERT INTO devices (id, compatible, channel, enrolled) VALUES (?, ?, ?, ?)');
    this.replaceStmt = db.prepare('UPDATE devices SET compatible = ?, channel = ?, enrolled = ? WHERE id = ?');
    const select = `SELECT d.*, (SELECT id FROM rollbacks r WHERE r.device = d.id AND r.delivered IS NULL ORDER BY requested LIMIT 1) AS pending FROM devices d`;
    this.getStmt = db.prepare(`${select} WHERE d.id = ?`);
    this.listStmt = db.prepare(`${select} ORDER BY d.id`);
    this.routingStmt = db.prepare('SELECT compatible, channel FROM devices WHERE id = ?');
    this.checkinStmt = db.prepare(
      'UPDATE devices SET last_seen = ?, slot = ?, version = ?, state = ?, tx_id = ?, tx_version = ?, tx_state = ? WHERE id = ?',
    );
  }

  /** True when a device with this id is enrolled. */
  exists(id: string): boolean {
    return this.routingStmt.get(id) !== undefined;
  }

  /** Enrolls a new device; an enrolled id is refused with DEVICE_EXISTS unless `replace`. */
  enroll(id: string, compatible: string, channel: string, replace: boolean, now = new Date()): void {
    if (this.exists(id)) {
      if (!replace) throw new OtaError('DEVICE_EXISTS', `device ${id}: already enrolled`);
      // Re-enrollment keeps the device's history; only its identity facts are renewed.
      this.replaceStmt.run(compatible, channel, now.toISOString(), id);
      return;
    }
    this.insertStmt.run(id, compatible, channel, now.toISOString());
  }

  /** One device, or undefined. */
  get(id: string): DeviceView | undefined {
    const row = this.getStmt.get(id) as DeviceRow | undefined;
    return row && view(row);
  }

  /** The whole fleet, by id. */
  list(): DeviceView[] {
    return (this.listStmt.all() as DeviceRow[]).map(view);
  }

  /** Compatible type and channel of a device, or undefined. */
  routing(id: string): DeviceRouting | undefined {
    return this.routingStmt.get(id) as DeviceRouting | undefined;
  }

  /** Records what a check-in says about the device. */
  recordCheckin(id: string, c: CheckinRequest, now: Date): void {
    const tx = c.transaction;
    this.checkinStmt.run(now.toISOString(), c.slot, c.version, c.state, tx?.id ?? null, tx?.version ?? null, tx?.state ?? null, id);
  }
}
