/**
 * Device reports: stored once per report id, folded into the device's record, and a final
 * failure remembered per (device, version) so that release is not offered to it again.
 */
import type { Report } from '../../shared/protocol.js';
import { compareVersions, isVersion } from '../../shared/version.js';
import type { Db } from './open.js';

/** A stored report as the device history shows it. */
export interface ReportView {
  id: string;
  transaction: string;
  version: string;
  state: string;
  outcome: string | null;
  reason: string | null;
  progress: { bytes: number; total: number } | null;
  details: Record<string, unknown> | null;
  at: string;
  received: string;
}

/** One transaction of a device, summarised from its reports. */
export interface TransactionView {
  id: string;
  version: string;
  /** State of the latest report. */
  state: string;
  outcome: string | null;
  reason: string | null;
  started: string;
  updated: string;
}

interface ReportRow {
  id: string;
  tx_id: string;
  version: string;
  state: string;
  outcome: string | null;
  reason: string | null;
  progress_bytes: number | null;
  progress_total: number | null;
  details: string | null;
  at: string;
  received: string;
}

function view(r: ReportRow): ReportView {
  return {
    id: r.id,
    transaction: r.tx_id,
    version: r.version,
    state: r.state,
    outcome: r.outcome,
    reason: r.reason,
    progress: r.progress_bytes !== null ? { bytes: r.progress_bytes, total: r.progress_total ?? 0 } : null,
    details: r.details !== null ? (JSON.parse(r.details) as Record<string, unknown>) : null,
    at: r.at,
    received: r.received,
  };
}

/** Groups reports (newest first) into transactions, newest first. */
export function transactionsOf(reports: readonly ReportView[]): TransactionView[] {
  const byId = new Map<string, TransactionView>();
  // Oldest first, so each later report overwrites state and outcome.
  for (const r of [...reports].reverse()) {
    const t = byId.get(r.transaction);
    if (!t) {
      byId.set(r.transaction, { id: r.transaction, version: r.version, state: r.state, outcome: r.outcome, reason: r.reason, started: r.at, updated: r.at });
      continue;
    }
    t.state = r.state;
    t.updated = r.at;
    if (r.outcome !== null) {
      t.outcome = r.outcome;
      t.reason = r.reason;
    }
  }
  return [...byId.values()].reverse();
}

/** Prepared statements over reports and failures. */
export class ReportQueries {
  private readonly record: (device: string, r: Report, now: Date) => boolean;
  private readonly listStmt;
  private readonly failedStmt;

  constructor(db: Db, after: (device: string, r: Report, now: Date) => void = () => undefined) {
    const insert = db.prepare(
      `INSERT INTO reports (device, id, tx_id, version, state, outcome, reason, progress_bytes, progress_total, details, at, received)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, id) DO NOTHING`,
    );
    const tx = db.prepare('UPDATE devices SET tx_id = ?, tx_version = ?, tx_state = ? WHERE id = ?');
    const outcome = db.prepare('UPDATE devices SET outcome = ?, outcome_reason = ?, outcome_version = ?, outcome_at = ? WHERE id = ?');
    const committed = db.prepare('SELECT version FROM devices WHERE id = ?').pluck();
    const setVersion = db.prepare('UPDATE devices SET version = ? WHERE id = ?');
    const failure = db.prepare(
      'INSERT INTO failures (device, version, reason, at) VALUES (?, ?, ?, ?) ON CONFLICT (device, version) DO UPDATE SET reason = excluded.reason, at = excluded.at',
    );
    // One transaction: a report is either wholly applied or not at all, whatever kills the server.
    this.record = db.transaction((device: string, r: Report, now: Date): boolean => {
      const details = r.details !== undefined ? JSON.stringify(r.details) : null;
      const res = insert.run(device, r.id, r.transaction, r.version, r.state, r.outcome ?? null, r.reason ?? null, r.progress?.bytes ?? null, r.progress?.total ?? null, details, r.at, now.toISOString());
      if (res.changes === 0) return false;
      after(device, r, now);
      // A refused directive is no transaction of the device: its record stays as it was.
      if ((r.details as { refused?: unknown } | undefined)?.refused === true) return true;
      tx.run(r.transaction, r.version, r.state, device);
      if (r.outcome === undefined) return true;
      outcome.run(r.outcome, r.reason ?? null, r.version, r.at, device);
      if (r.outcome === 'failure') {
        failure.run(device, r.version, r.reason ?? 'unspecified', now.toISOString());
      } else if (isVersion(r.version)) {
        const current = committed.get(device) as string | null;
        if (current === null || !isVersion(current) || compareVersions(r.version, current) > 0) setVersion.run(r.version, device);
      }
      return true;
    }).immediate;
    this.listStmt = db.prepare(
      'SELECT id, tx_id, version, state, outcome, reason, progress_bytes, progress_total, details, at, received FROM reports WHERE device = ? ORDER BY seq DESC LIMIT ?',
    );
    this.failedStmt = db.prepare('SELECT 1 FROM failures WHERE device = ? AND version = ?').pluck();
  }

  /** Stores a report and applies it to the device; false when its id was stored before. */
  add(device: string, report: Report, now = new Date()): boolean {
    return this.record(device, report, now);
  }

  /** A device's reports, newest first. */
  list(device: string, limit = 500): ReportView[] {
    return (this.listStmt.all(device, limit) as ReportRow[]).map(view);
  }

  /** True when `version` ended in failure on `device` (it is then not offered again). */
  failed(device: string, version: string): boolean {
    return this.failedStmt.get(device, version) !== undefined;
  }
}
