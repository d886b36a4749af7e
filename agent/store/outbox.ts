/**
 * Reports to the server wait here until sent (the server de-duplicates by report id), so none
 * is lost when the server is down or the agent restarts. Progress reports are coalesced: a
 * transaction keeps at most one unsent progress report, updated in place.
 */
import type { Report } from '../../shared/protocol.js';
import type { Db } from './db.js';
import type { OutboxEntry } from './types.js';

interface Row {
  seq: number;
  id: string;
  transaction_id: string;
  kind: 'state' | 'progress';
  body: string;
  sent: number;
}

/** Queues a report (inside the caller's store write). */
export function enqueueReport(db: Db, report: Report, kind: 'state' | 'progress', now: string): void {
  if (kind === 'progress') {
    const r = db
      .prepare("UPDATE outbox SET body = ?, created_at = ? WHERE transaction_id = ? AND kind = 'progress' AND sent = 0")
      .run(JSON.stringify(report), now, report.transaction);
    if (r.changes > 0) return;
  }
  db.prepare('INSERT INTO outbox (id, transaction_id, kind, body, created_at) VALUES (?, ?, ?, ?, ?)').run(
    report.id,
    report.transaction,
    kind,
    JSON.stringify(report),
    now,
  );
}

function fromRow(r: Row): OutboxEntry {
  return { seq: r.seq, id: r.id, transactionId: r.transaction_id, kind: r.kind, body: JSON.parse(r.body) as Record<string, unknown>, sent: r.sent === 1 };
}

/** Unsent reports, oldest first. */
export function pendingReports(db: Db, limit = 100): OutboxEntry[] {
  return (db.prepare('SELECT * FROM outbox WHERE sent = 0 ORDER BY seq LIMIT ?').all(limit) as Row[]).map(fromRow);
}

/** Every report of a transaction, in order (for tests and history). */
export function reportsOf(db: Db, transactionId: string): OutboxEntry[] {
  return (db.prepare('SELECT * FROM outbox WHERE transaction_id = ? ORDER BY seq').all(transactionId) as Row[]).map(fromRow);
}

/**
 * Marks a report delivered. With `bodyId` (the id of the body that was posted) only if the row
 * still holds that body: a progress report coalesced into the row while it was on its way
 * stays unsent, to go out next. Returns whether the row was marked.
 */
export function markReportSent(db: Db, id: string, now: string, bodyId?: string): boolean {
  if (bodyId === undefined) return db.prepare('UPDATE outbox SET sent = 1, sent_at = ? WHERE id = ?').run(now, id).changes > 0;
  return db.prepare("UPDATE outbox SET sent = 1, sent_at = ? WHERE id = ? AND json_extract(body, '$.id') = ?").run(now, id, bodyId).changes > 0;
}
