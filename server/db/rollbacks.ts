/** Technician rollback requests: queued per device, delivered at most once. */
import { OtaError } from '../../shared/errors.js';
import type { Report } from '../../shared/protocol.js';
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
  /** What the device said of it: success, failure, or refused (it could not carry it out). */
  outcome: 'success' | 'failure' | 'refused' | null;
  outcomeReason: string | null;
}

/** Prepared statements over the rollbacks table. */
export class RollbackQueries {
  private readonly pendingStmt;
  private readonly insertStmt;
  private readonly deliverStmt;
  private readonly listStmt;
  private readonly outcomeStmt;

  constructor(db: Db) {
    this.outcomeStmt = db.prepare('UPDATE rollbacks SET outcome = ?, outcome_reason = ?, outcome_at = ? WHERE id = ? AND device = ?');
    this.pendingStmt = db.prepare('SELECT id FROM rollbacks WHERE device = ? AND delivered IS NULL ORDER BY requested LIMIT 1').pluck();
    this.insertStmt = db.prepare('INSERT INTO rollbacks (id, device, requested_by, note, requested) VALUES (?, ?, ?, ?, ?)');
    this.deliverStmt = db.prepare('UPDATE rollbacks SET delivered = ? WHERE id = ? AND delivered IS NULL');
    this.listStmt = db.prepare(
      'SELECT id, device, requested_by AS requestedBy, note, requested, delivered, outcome, outcome_reason AS outcomeReason FROM rollbacks WHERE device = ? ORDER BY requested DESC LIMIT ?',
    );
  }

  /** Queues a request; one already waiting is refused with ROLLBACK_PENDING. */
  request(device: string, requestedBy: string, note: string | null, now = new Date()): RollbackView {
    const pending = this.pendingStmt.get(device) as string | undefined;
    if (pending) throw new OtaError('ROLLBACK_PENDING', `device ${device}: rollback request ${pending} is still waiting for the device's next check-in`);
    const row: RollbackView = { id: newId('rb'), device, requestedBy, note, requested: now.toISOString(), delivered: null, outcome: null, outcomeReason: null };
    this.insertStmt.run(row.id, device, requestedBy, note, row.requested);
    return row;
  }

  /** The id of the request waiting for the device (its next check-in delivers it), or null. */
  waiting(device: string): string | null {
    return (this.pendingStmt.get(device) as string | undefined) ?? null;
  }

  /**
   * Marks a waiting request delivered; returns its id, or null when it was not waiting (any
   * more). Delivered once even if the answer is lost on the way: a rollback repeated later
   * could leave a release the technician meanwhile accepted, so a lost one is requested again
   * by hand.
   */
  deliver(id: string, now: Date): string | null {
    return this.deliverStmt.run(now.toISOString(), id).changes === 1 ? id : null;
  }

  /**
   * Records the outcome of a delivered request from the device's report: the final report of
   * the rollback transaction, or the report of a refusal (`details.refused`), which carries the
   * device's reason (e.g. ROLLBACK_UNAVAILABLE: no committed release in the other slot).
   */
  onReport(device: string, r: Report, now: Date): void {
    const d = r.details as { directive?: unknown; refused?: unknown } | undefined;
    if (typeof d?.directive !== 'string' || !d.directive.startsWith('rb_')) return;
    if (d.refused === true) this.outcomeStmt.run('refused', r.reason ?? 'unspecified', now.toISOString(), d.directive, device);
    // A rollback transaction reports "failure" when it ends rolled back: for the request, that is done.
    else if (r.outcome) this.outcomeStmt.run(r.state === 'rolled-back' ? 'success' : 'failure', r.reason ?? null, now.toISOString(), d.directive, device);
  }

  /** A device's requests, newest first. */
  list(device: string, limit = 100): RollbackView[] {
    return this.listStmt.all(device, limit) as RollbackView[];
  }
}
