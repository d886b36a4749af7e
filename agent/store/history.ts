/** The history table: every transition, health-check run, boot and technician action. */
import type { Db } from './db.js';
import type { EventType, HistoryEvent } from './types.js';

interface Row {
  id: number;
  at: string;
  transaction_id: string | null;
  type: EventType;
  from_state: string | null;
  to_state: string | null;
  slot: string | null;
  reason: string | null;
  details: string | null;
}

/** What an event records. */
export interface NewEvent {
  transactionId?: string | null;
  type: EventType;
  fromState?: string | null;
  toState?: string | null;
  slot?: string | null;
  reason?: string | null;
  details?: Record<string, unknown> | null;
}

/** Appends one event. */
export function addEvent(db: Db, e: NewEvent, now: string): void {
  db.prepare('INSERT INTO events (at, transaction_id, type, from_state, to_state, slot, reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
    now,
    e.transactionId ?? null,
    e.type,
    e.fromState ?? null,
    e.toState ?? null,
    e.slot ?? null,
    e.reason ?? null,
    e.details ? JSON.stringify(e.details) : null,
  );
}

/** Events of one transaction, oldest first; or the latest `limit` events of all, oldest first. */
export function listEvents(db: Db, opts: { transactionId?: string; limit?: number }): HistoryEvent[] {
  const rows = (
    opts.transactionId !== undefined
      ? db.prepare('SELECT * FROM events WHERE transaction_id = ? ORDER BY id').all(opts.transactionId)
      : db.prepare('SELECT * FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?) ORDER BY id').all(opts.limit ?? 100)
  ) as Row[];
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    transactionId: r.transaction_id,
    type: r.type,
    fromState: r.from_state,
    toState: r.to_state,
    slot: r.slot,
    reason: r.reason,
    details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
  }));
}
