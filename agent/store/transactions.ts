/** Queries on the transactions table; state changes are compare-and-set on (state, transitions). */
import { OtaError } from '../../shared/errors.js';
import type { SlotName } from '../config/types.js';
import type { State } from '../machine/states.js';
import type { Db } from './db.js';
import { camelized } from './rows.js';
import type { Transaction, TransactionKind } from './types.js';

interface Row {
  id: string;
  kind: TransactionKind;
  origin: 'local' | 'server';
  directive_id: string | null;
  version: string;
  state: State;
  prev_state: State | null;
  source_slot: SlotName;
  target_slot: SlotName;
  source: string | null;
  bundle_sha256: string | null;
  bundle_size: number | null;
  manifest: Buffer | null;
  manifest_sig: Buffer | null;
  allow_downgrade: number;
  payloads_offset: number | null;
  bytes_read: number;
  bytes_total: number | null;
  resume_index: number | null;
  resume_data_offset: number | null;
  durable_offset: number;
  slot_digest: string | null;
  step: string | null;
  transitions: number;
  reason: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

function fromRow(r: Row): Transaction {
  // Every column maps to its camelCase field; only the boolean is stored as 0/1.
  return { ...camelized(r), allowDowngrade: r.allow_downgrade === 1 };
}

/** What a new transaction starts with. */
export interface NewTransaction {
  id: string;
  kind: TransactionKind;
  origin: 'local' | 'server';
  directiveId?: string | null;
  version: string;
  state: State;
  sourceSlot: SlotName;
  targetSlot: SlotName;
  source?: string | null;
  bundleSha256?: string | null;
  bundleSize?: number | null;
  manifest?: Buffer | null;
  manifestSig?: Buffer | null;
  allowDowngrade?: boolean;
  payloadsOffset?: number | null;
  bytesTotal?: number | null;
  reason?: string | null;
}

/** Fields a handler may record without changing state. */
export interface TransactionProgress {
  bytesRead?: number;
  bytesTotal?: number | null;
  resumeIndex?: number | null;
  resumeDataOffset?: number | null;
  durableOffset?: number;
  slotDigest?: string | null;
  step?: string | null;
}

/** The transaction in flight (not finished), if any. */
export function currentTransaction(db: Db): Transaction | undefined {
  const r = db.prepare('SELECT * FROM transactions WHERE finished_at IS NULL').get() as Row | undefined;
  return r && fromRow(r);
}

/** One transaction by id. */
export function getTransaction(db: Db, id: string): Transaction | undefined {
  const r = db.prepare('SELECT * FROM transactions WHERE id = ?').get(id) as Row | undefined;
  return r && fromRow(r);
}

/** Transactions, newest first. */
export function listTransactions(db: Db, limit: number): Transaction[] {
  return (db.prepare('SELECT * FROM transactions ORDER BY created_at DESC, rowid DESC LIMIT ?').all(limit) as Row[]).map(fromRow);
}

/** Inserts a transaction, already in its first state (one entry counted). */
export function insertTransaction(db: Db, t: NewTransaction, now: string): Transaction {
  if (currentTransaction(db)) {
    throw new OtaError('TRANSACTION_IN_PROGRESS', `transaction ${currentTransaction(db)!.id} is still in flight; see ota-agent status`);
  }
  db.prepare(
    `INSERT INTO transactions (id, kind, origin, directive_id, version, state, source_slot, target_slot, source,
       bundle_sha256, bundle_size, manifest, manifest_sig, allow_downgrade, payloads_offset, bytes_total, transitions, reason, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
  ).run(
    t.id, t.kind, t.origin, t.directiveId ?? null, t.version, t.state, t.sourceSlot, t.targetSlot, t.source ?? null,
    t.bundleSha256 ?? null, t.bundleSize ?? null, t.manifest ?? null, t.manifestSig ?? null, t.allowDowngrade ? 1 : 0,
    t.payloadsOffset ?? null, t.bytesTotal ?? null, t.reason ?? null, now, now,
  );
  return getTransaction(db, t.id)!;
}

function changed(tx: Transaction): never {
  throw new OtaError('TRANSACTION_CHANGED', `transaction ${tx.id}: moved on from "${tx.state}" by another process`);
}

/** Moves `tx` to `next` if nobody else moved it since it was read; clears the sub-step. */
export function enterState(db: Db, tx: Transaction, next: State, reason: string | null, now: string): Transaction {
  const r = db
    .prepare(
      `UPDATE transactions SET prev_state = state, state = ?, transitions = transitions + 1, step = NULL,
         reason = COALESCE(?, reason), updated_at = ?
       WHERE id = ? AND state = ? AND transitions = ? AND finished_at IS NULL`,
    )
    .run(next, reason, now, tx.id, tx.state, tx.transitions);
  if (r.changes !== 1) changed(tx);
  return getTransaction(db, tx.id)!;
}

/** Records progress fields of `tx` in its current state. */
export function recordProgress(db: Db, tx: Transaction, p: TransactionProgress, now: string): Transaction {
  const sets: string[] = [];
  const args: unknown[] = [];
  const col = {
    bytesRead: 'bytes_read',
    bytesTotal: 'bytes_total',
    resumeIndex: 'resume_index',
    resumeDataOffset: 'resume_data_offset',
    durableOffset: 'durable_offset',
    slotDigest: 'slot_digest',
    step: 'step',
  } as const;
  for (const [k, c] of Object.entries(col)) {
    const v = p[k as keyof TransactionProgress];
    if (v !== undefined) {
      sets.push(`${c} = ?`);
      args.push(v);
    }
  }
  sets.push('updated_at = ?');
  args.push(now);
  const r = db
    .prepare(`UPDATE transactions SET ${sets.join(', ')} WHERE id = ? AND state = ? AND transitions = ? AND finished_at IS NULL`)
    .run(...args, tx.id, tx.state, tx.transitions);
  if (r.changes !== 1) changed(tx);
  return getTransaction(db, tx.id)!;
}

/** Marks `tx` finished (its final state's handler completed). */
export function finishTransaction(db: Db, tx: Transaction, now: string): Transaction {
  const r = db
    .prepare('UPDATE transactions SET finished_at = ?, updated_at = ? WHERE id = ? AND state = ? AND transitions = ? AND finished_at IS NULL')
    .run(now, now, tx.id, tx.state, tx.transitions);
  if (r.changes !== 1) changed(tx);
  return getTransaction(db, tx.id)!;
}
