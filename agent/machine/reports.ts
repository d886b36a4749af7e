/** Reports for the server (shared/protocol.ts), made from a transaction. */
import { randomUUID } from 'node:crypto';
import type { Report } from '../../shared/protocol.js';
import type { Transaction } from '../store/types.js';
import type { State } from './states.js';

/** The report of entering `state`. */
export function stateReport(tx: Transaction, state: State, at: string): Report {
  return { id: randomUUID(), transaction: tx.id, version: tx.version, state, at, ...(directive(tx)) };
}

/** The final report of a transaction: success only after a commit. */
export function finalReport(tx: Transaction, at: string, details: Record<string, unknown>): Report {
  const success = tx.state === 'committed';
  const r: Report = {
    id: randomUUID(),
    transaction: tx.id,
    version: tx.version,
    state: tx.state,
    outcome: success ? 'success' : 'failure',
    at,
    details: { kind: tx.kind, slot: tx.targetSlot, ...details, ...(directive(tx).details ?? {}) },
  };
  if (!success && tx.reason) r.reason = tx.reason;
  return r;
}

/** A progress report (coalesced in the outbox). */
export function progressReport(tx: Transaction, bytes: number, total: number, at: string): Report {
  return { id: randomUUID(), transaction: tx.id, version: tx.version, state: tx.state, progress: { bytes, total }, at };
}

function directive(tx: Transaction): { details?: Record<string, unknown> } {
  return tx.directiveId ? { details: { directive: tx.directiveId } } : {};
}
