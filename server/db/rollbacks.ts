/** Technician rollback requests: queued per device, delivered at most once. */
import { OtaError } from '../../shared/errors.js';
import { newId } from '../tokens.js';
import type { Db } from './open.js';

/** A rollback request as the API shows it. */
export interface RollbackView {
  id: string;
  device: string;
  requestedBy: string;
  note: string | null;
  requested: string;
  delivered: string | null;
}

/** Prepared statements over the rollbacks table. */
export class RollbackQueries {
  private readonly pendingStmt;
  private readonly insertStmt;
  private readonly deliverStmt;
  private readonly listStmt;

  constructor(db: Db) {
    this.pendingStmt = db.prepare('SELECT id FROM rollbacks WHERE device = ? AND delivered IS NULL ORDER BY requested LIMIT 1').pluck();
    this.insertStmt = db.prepare('INSERT INTO rollbacks (id, device, requested_by, note, requested) VALUES (?, ?, ?, ?, ?)');
    this.deliverStmt = db.prepare('UPDATE rollbacks SET delivered = ? WHERE id = ?');
    this.listStmt = db.prepare(
      'SELECT id, device, requested_by AS requestedBy, note, requested, delivered FROM rollbacks WHERE device = ? ORDER BY requested DESC LIMIT ?',
    );
  }

  /** Queues a request; one already waiting is refused with ROLLBACK_PENDING. */
  request(device: string, requestedBy: string, note: string | null, now = new Date()): RollbackView {
    const pending = this.pendingStmt.get(device) as string | undefined;
    if (pending) throw new OtaError('ROLLBACK_PENDING', `device ${device}: rollback request ${pending} is still waiting for the device's next check-in`);
    const row: RollbackView = { id: newId('rb'), device, requestedBy, note, requested: now.toISOString(), delivered: null };
    this.insertStmt.run(row.id, device, requestedBy, note, row.requested);
    return row;
  }

  /** Whether a request waits for the device (so its next check-in will take it). */
  waiting(device: string): boolean {
    return this.pendingStmt.get(device) !== undefined;
  }

  /**
   * Takes the waiting request of a device, marking it delivered, or returns null. Delivered
   * once even if the answer is lost on the way: a rollback repeated later could leave a release
   * the technician meanwhile accepted, so a lost one is requested again by hand.
   */
  take(device: string, now: Date): string | null {
    const id = this.pendingStmt.get(device) as string | undefined;
    if (id === undefined) return null;
    this.deliverStmt.run(now.toISOString(), id);
    return id;
  }

  /** A device's requests, newest first. */
  list(device: string, limit = 100): RollbackView[] {
    return this.listStmt.all(device, limit) as RollbackView[];
  }
}
