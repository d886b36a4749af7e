/** What each slot holds, and the highest version ever committed (the downgrade floor). */
import { compareVersions } from '../../shared/version.js';
import { SLOT_NAMES, type SlotName } from '../config/types.js';
import type { Db } from './db.js';
import type { SlotInfo, SlotStatus } from './types.js';

interface Row {
  name: SlotName;
  version: string | null;
  status: SlotStatus;
  transaction_id: string | null;
  updated_at: string;
  committed_at: string | null;
}

/** Both slots' records; a slot never written by the agent is `unknown`. */
export function slotInfos(db: Db): Record<SlotName, SlotInfo> {
  const rows = db.prepare('SELECT * FROM slots').all() as Row[];
  const out = {} as Record<SlotName, SlotInfo>;
  for (const name of SLOT_NAMES) {
    const r = rows.find((x) => x.name === name);
    out[name] = r
      ? { name, version: r.version, status: r.status, transactionId: r.transaction_id, updatedAt: r.updated_at, committedAt: r.committed_at }
      : { name, version: null, status: 'unknown', transactionId: null, updatedAt: null, committedAt: null };
  }
  return out;
}

/** Sets a slot's record; `committed` also stamps committed_at. */
export function setSlot(db: Db, name: SlotName, s: { version: string | null; status: SlotStatus; transactionId: string | null }, now: string): void {
  db.prepare(
    `INSERT INTO slots (name, version, status, transaction_id, updated_at, committed_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET version = excluded.version, status = excluded.status, transaction_id = excluded.transaction_id,
       updated_at = excluded.updated_at, committed_at = CASE WHEN excluded.status = 'committed' THEN excluded.updated_at ELSE slots.committed_at END`,
  ).run(name, s.version, s.status, s.transactionId, now, s.status === 'committed' ? now : null);
}

/** Changes only a slot's status. */
export function setSlotStatus(db: Db, name: SlotName, status: SlotStatus, now: string): void {
  const cur = slotInfos(db)[name];
  setSlot(db, name, { version: cur.version, status, transactionId: cur.transactionId }, now);
}

/** The highest release version ever committed on this device, or null. */
export function highestCommitted(db: Db): string | null {
  const r = db.prepare("SELECT value FROM meta WHERE key = 'highest_committed'").get() as { value: string } | undefined;
  return r?.value ?? null;
}

/** Raises the highest committed version to `version` if it is greater. */
export function raiseHighestCommitted(db: Db, version: string): void {
  const cur = highestCommitted(db);
  if (cur !== null && compareVersions(version, cur) <= 0) return;
  db.prepare("INSERT INTO meta (key, value) VALUES ('highest_committed', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(version);
}
