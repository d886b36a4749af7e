/**
 * The agent's store as one object: reads, and `write`, which hands a writer to a function
 * whose every change lands in one SQLite transaction (one durable write). The state machine
 * uses that to persist a state, its history event and its report together.
 */
import type { Report } from '../../shared/protocol.js';
import type { SlotName } from '../config/types.js';
import type { State } from '../machine/states.js';
import { StoreDb, type Db } from './db.js';
import { addEvent, listEvents, type NewEvent } from './history.js';
import { enqueueReport, markReportSent, pendingReports, reportsOf } from './outbox.js';
import { highestCommitted, raiseHighestCommitted, setSlot, setSlotStatus, slotInfos } from './slots.js';
import {
  currentTransaction,
  enterState,
  finishTransaction,
  getTransaction,
  insertTransaction,
  listTransactions,
  recordProgress,
  type NewTransaction,
  type TransactionProgress,
} from './transactions.js';
import type { HistoryEvent, OutboxEntry, SlotInfo, SlotStatus, Transaction } from './types.js';
import { isoTime } from '../../shared/iso-time.js';

/** The changes one store write may make; all of them commit together or not at all. */
export class StoreWriter {
  constructor(
    private readonly db: Db,
    /** The time stamped on every change of this write. */
    readonly now: string,
  ) {}

  /** Inserts a new transaction in its first state. */
  insert(t: NewTransaction): Transaction {
    return insertTransaction(this.db, t, this.now);
  }

  /** Moves a transaction to its next state (compare-and-set). */
  enter(tx: Transaction, next: State, reason: string | null = null): Transaction {
    return enterState(this.db, tx, next, reason, this.now);
  }

  /** Records progress within the current state. */
  progress(tx: Transaction, p: TransactionProgress): Transaction {
    return recordProgress(this.db, tx, p, this.now);
  }

  /** Marks a transaction finished. */
  finish(tx: Transaction): Transaction {
    return finishTransaction(this.db, tx, this.now);
  }

  /** Appends a history event. */
  event(e: NewEvent): void {
    addEvent(this.db, e, this.now);
  }

  /** Sets what a slot holds. */
  slot(name: SlotName, s: { version: string | null; status: SlotStatus; transactionId: string | null }): void {
    setSlot(this.db, name, s, this.now);
  }

  /** Changes a slot's status only. */
  slotStatus(name: SlotName, status: SlotStatus): void {
    setSlotStatus(this.db, name, status, this.now);
  }

  /** Raises the downgrade floor. */
  committedVersion(version: string): void {
    raiseHighestCommitted(this.db, version);
  }

  /** Queues a report for the server. */
  report(r: Report, kind: 'state' | 'progress' = 'state'): void {
    enqueueReport(this.db, r, kind, this.now);
  }
}

/** The open store. */
export class Store {
  private constructor(private readonly sdb: StoreDb) {}

  /** Opens the store in `dataDir`, creating and migrating it as needed. */
  static open(dataDir: string): Store {
    return new Store(StoreDb.open(dataDir));
  }

  /** The database file. */
  get path(): string {
    return this.sdb.path;
  }

  /** Closes it. */
  close(): void {
    this.sdb.close();
  }

  /** Makes several changes as one durable write. */
  write<T>(what: string, fn: (w: StoreWriter) => T): T {
    return this.sdb.write(what, (db) => fn(new StoreWriter(db, isoTime())));
  }

  /** The transaction in flight, if any. */
  current(): Transaction | undefined {
    return this.sdb.read('reading the current transaction', currentTransaction);
  }

  /** A transaction by id. */
  transaction(id: string): Transaction | undefined {
    return this.sdb.read(`reading transaction ${id}`, (db) => getTransaction(db, id));
  }

  /** Transactions, newest first. */
  transactions(limit = 50): Transaction[] {
    return this.sdb.read('listing transactions', (db) => listTransactions(db, limit));
  }

  /** History events (of one transaction, or the latest ones). */
  events(opts: { transactionId?: string; limit?: number } = {}): HistoryEvent[] {
    return this.sdb.read('reading history', (db) => listEvents(db, opts));
  }

  /** What each slot holds. */
  slots(): Record<SlotName, SlotInfo> {
    return this.sdb.read('reading slots', slotInfos);
  }

  /** The downgrade floor. */
  highestCommitted(): string | null {
    return this.sdb.read('reading the highest committed version', highestCommitted);
  }

  /** Reports of one transaction, in order. */
  reports(transactionId: string): OutboxEntry[] {
    return this.sdb.read('reading reports', (db) => reportsOf(db, transactionId));
  }

  /** Reports still to send. */
  pendingReports(limit?: number): OutboxEntry[] {
    return this.sdb.read('reading the outbox', (db) => pendingReports(db, limit));
  }

  /**
   * Marks a report delivered (a durable write of its own kind, for power-cut tests); with
   * `bodyId`, only if the row still holds the body that was sent (see outbox.ts).
   */
  markReportSent(id: string, bodyId?: string): boolean {
    return this.sdb.write(`report ${id} sent`, (db) => markReportSent(db, id, isoTime(), bodyId), 'report-sent');
  }
}
