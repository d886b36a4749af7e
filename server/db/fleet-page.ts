/**
 * The fleet as the console pages through it: filters turned into SQL (never a scan in
 * JavaScript), keyset pagination on the device id (`id > cursor ORDER BY id LIMIT n`, which
 * reads n rows from the primary key whatever the page), and counts by state and version.
 * Stays fast at 100,000 devices (test/server/console/fleet-scale.test.ts).
 *
 * No index on state or version: every check-in writes both, and three such indexes cost a
 * quarter of the check-in throughput (each adds a page to every check-in's WAL commit). The
 * counts read the table instead, and are kept for COUNTS_TTL_MS per filter, so consoles
 * refreshing every 2 s cost one scan per filter and period, whatever their number.
 */
import type Database from 'better-sqlite3';
import { deviceIdentity } from './devices.js';
import type { Db } from './open.js';

/** What the fleet page can be filtered by; every filter given must hold. */
export interface FleetFilter {
  product?: string;
  channel?: string;
  /** Reported state; `unknown` for a device that never checked in. */
  state?: string;
  /** Highest committed version. */
  version?: string;
  compatible?: string;
  /** A tag the device must carry. */
  tag?: string;
  /** Last outcome: success or failure. */
  outcome?: string;
  /** Device ids starting with this. */
  prefix?: string;
  /** Not seen for at least this many seconds (or never). */
  silentSeconds?: number;
}

/** One row of the fleet page. */
export interface FleetRow {
  id: string;
  product: string | null;
  compatible: string;
  channel: string;
  tags: string[];
  slot: string | null;
  /** The version of the booted slot, when the device reports slot versions as attributes (`slot.A`). */
  running: string | null;
  /** Highest committed version. */
  version: string | null;
  state: string | null;
  transaction: { version: string; state: string } | null;
  lastSeen: string | null;
  lastOutcome: { outcome: string; reason: string | null; version: string; at: string } | null;
  pendingRollback: boolean;
}

interface Row {
  id: string;
  product: string | null;
  compatible: string;
  channel: string;
  tags: string | null;
  attributes: string;
  slot: string | null;
  version: string | null;
  state: string | null;
  tx_version: string | null;
  tx_state: string | null;
  last_seen: string | null;
  outcome: string | null;
  outcome_reason: string | null;
  outcome_version: string | null;
  outcome_at: string | null;
  pending: number;
}

/** The version in the booted slot, from the `slot.<name>` attribute the agent reports. */
export function runningVersion(slot: string | null, attributes: Record<string, string>): string | null {
  return slot === null ? null : (attributes[`slot.${slot}`] ?? null);
}

function row(r: Row): FleetRow {
  let attributes: Record<string, string> = {};
  try {
    attributes = JSON.parse(r.attributes) as Record<string, string>;
  } catch {
    // A row written before attributes existed holds the column default.
  }
  return {
    ...deviceIdentity(r),
    slot: r.slot,
    running: runningVersion(r.slot, attributes),
    version: r.version,
    state: r.state,
    transaction: r.tx_state !== null ? { version: r.tx_version ?? '', state: r.tx_state } : null,
    lastSeen: r.last_seen,
    lastOutcome: r.outcome !== null ? { outcome: r.outcome, reason: r.outcome_reason, version: r.outcome_version ?? '', at: r.outcome_at ?? '' } : null,
    pendingRollback: r.pending === 1,
  };
}

/** The WHERE clause and its parameters for a filter. */
export function whereOf(f: FleetFilter, now = new Date()): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const eq = (col: string, v: string | undefined): void => {
    if (v === undefined) return;
    parts.push(`${col} = ?`);
    params.push(v);
  };
  eq('d.product', f.product);
  eq('d.channel', f.channel);
  eq('d.version', f.version);
  eq('d.compatible', f.compatible);
  eq('d.outcome', f.outcome);
  if (f.state !== undefined) {
    if (f.state === 'unknown') parts.push('d.state IS NULL');
    else eq('d.state', f.state);
  }
  if (f.tag !== undefined) {
    parts.push('EXISTS (SELECT 1 FROM device_tags t WHERE t.device = d.id AND t.tag = ?)');
    params.push(f.tag);
  }
  if (f.prefix !== undefined && f.prefix !== '') {
    // A range on the primary key, not LIKE: it uses the index and treats % and _ as text.
    parts.push('d.id >= ? AND d.id < ?');
    params.push(f.prefix, `${f.prefix}\u{10FFFF}`);
  }
  if (f.silentSeconds !== undefined) {
    parts.push('(d.last_seen IS NULL OR d.last_seen < ?)');
    params.push(new Date(now.getTime() - f.silentSeconds * 1000).toISOString());
  }
  return { sql: parts.length ? parts.join(' AND ') : '1 = 1', params };
}

/** One page and where the next one starts. */
export interface FleetPage {
  devices: FleetRow[];
  /** The cursor of the next page, or null on the last one. */
  next: string | null;
}

/** Counts over the filtered fleet. */
export interface FleetCounts {
  total: number;
  byState: { state: string; devices: number }[];
  byVersion: { version: string; devices: number }[];
}

/** How long counts are reused for the same filter, ms. */
export const COUNTS_TTL_MS = 2000;

/** Queries of the console's fleet views. */
export class FleetPageQueries {
  private readonly cache = new Map<string, Database.Statement<unknown[]>>();
  private readonly recent = new Map<string, { at: number; counts: FleetCounts }>();

  constructor(private readonly db: Db) {}

  private stmt(sql: string): Database.Statement<unknown[]> {
    let s = this.cache.get(sql);
    if (!s) {
      // One statement per filter shape (a few dozen at most), prepared once.
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  /** Up to `limit` devices after `cursor` (a device id), by id. */
  page(f: FleetFilter, cursor: string | null, limit: number): FleetPage {
    const w = whereOf(f);
    const after = cursor === null ? '' : ' AND d.id > ?';
    const sql = `SELECT d.id, d.product, d.compatible, d.channel, d.attributes, d.slot, d.version, d.state, d.tx_version, d.tx_state, d.last_seen,
        d.outcome, d.outcome_reason, d.outcome_version, d.outcome_at,
        (SELECT group_concat(tag, char(10)) FROM device_tags t WHERE t.device = d.id) AS tags,
        EXISTS (SELECT 1 FROM rollbacks r WHERE r.device = d.id AND r.delivered IS NULL) AS pending
      FROM devices d WHERE ${w.sql}${after} ORDER BY d.id LIMIT ?`;
    const rows = this.stmt(sql).all(...w.params, ...(cursor === null ? [] : [cursor]), limit + 1) as Row[];
    const more = rows.length > limit;
    const devices = rows.slice(0, limit).map(row);
    return { devices, next: more ? devices[devices.length - 1]!.id : null };
  }

  /** Devices by state and by committed version (most first), over the filtered fleet. */
  counts(f: FleetFilter, now = Date.now()): FleetCounts {
    const key = JSON.stringify(f);
    const hit = this.recent.get(key);
    if (hit && now - hit.at < COUNTS_TTL_MS) return hit.counts;
    const counts = this.count(f);
    if (this.recent.size > 100) this.recent.clear();
    this.recent.set(key, { at: now, counts });
    return counts;
  }

  private count(f: FleetFilter): FleetCounts {
    const w = whereOf(f);
    const byState = this.stmt(`SELECT coalesce(d.state, 'unknown') AS state, count(*) AS devices FROM devices d WHERE ${w.sql} GROUP BY d.state ORDER BY devices DESC, state`).all(
      ...w.params,
    ) as { state: string; devices: number }[];
    const byVersion = this.stmt(
      `SELECT coalesce(d.version, 'none') AS version, count(*) AS devices FROM devices d WHERE ${w.sql} GROUP BY d.version ORDER BY devices DESC, version LIMIT 50`,
    ).all(...w.params) as { version: string; devices: number }[];
    return { total: byState.reduce((n, s) => n + s.devices, 0), byState, byVersion };
  }
}
