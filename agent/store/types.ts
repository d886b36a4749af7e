/** The records of the agent's store, as the rest of the agent sees them. */
import type { SlotName } from '../config/types.js';
import type { State } from '../machine/states.js';

/** What a transaction does: install a bundle, or switch back to the other committed slot. */
export type TransactionKind = 'install' | 'rollback';

/** One update or rollback transaction. */
export interface Transaction {
  readonly id: string;
  readonly kind: TransactionKind;
  /** Started by a technician on the device, or by a server directive. */
  readonly origin: 'local' | 'server';
  /** The server's directive id, echoed in reports. */
  readonly directiveId: string | null;
  /** The release being installed, or the release a rollback returns to. */
  readonly version: string;
  readonly state: State;
  readonly prevState: State | null;
  /** The slot booted when the transaction started. */
  readonly sourceSlot: SlotName;
  /** The slot written and booted (install) or switched to (rollback). */
  readonly targetSlot: SlotName;
  /** Bundle path or URL. */
  readonly source: string | null;
  readonly bundleSha256: string | null;
  readonly bundleSize: number | null;
  /** The exact signed manifest bytes and signature, to recognise the bundle when resuming. */
  readonly manifest: Buffer | null;
  readonly manifestSig: Buffer | null;
  readonly allowDowngrade: boolean;
  /** Offset of the first payload header in the bundle (to resume reading it). */
  readonly payloadsOffset: number | null;
  /** Bundle bytes read so far, and the total when known. */
  readonly bytesRead: number;
  readonly bytesTotal: number | null;
  /**
   * Resume point of an interrupted download: payload `resumeIndex`, whose data starts at bundle
   * offset `resumeDataOffset`, is fsynced in the slot up to its byte `durableOffset`. Null
   * index: the download restarts from the beginning (a tree or a gzip image cannot resume).
   */
  readonly resumeIndex: number | null;
  readonly resumeDataOffset: number | null;
  readonly durableOffset: number;
  /** What the slot must read back as (JSON of a SlotDigest), once written. */
  readonly slotDigest: string | null;
  /** A handler's durable sub-step within the current state. */
  readonly step: string | null;
  /** How many times a state was entered; past config.maxTransitions the transaction fails with `loop`. */
  readonly transitions: number;
  /** Why it failed or rolled back: `health-check:<name>`, `boot-failed`, `timeout`, `technician`, `loop`, ... */
  readonly reason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Set once a final state's handler completed. */
  readonly finishedAt: string | null;
}

/** What a slot holds, as far as the agent knows. */
export type SlotStatus = 'unknown' | 'installing' | 'installed' | 'committed' | 'bad';

/** One slot's record. */
export interface SlotInfo {
  readonly name: SlotName;
  readonly version: string | null;
  readonly status: SlotStatus;
  readonly transactionId: string | null;
  readonly updatedAt: string | null;
  readonly committedAt: string | null;
}

/** Kinds of history events (`server`: a check-in answer refused, a directive not carried out, a report dropped). */
export type EventType = 'transition' | 'health' | 'boot' | 'technician' | 'error' | 'server' | 'hold';

/** One line of history. */
export interface HistoryEvent {
  readonly id: number;
  readonly at: string;
  readonly transactionId: string | null;
  readonly type: EventType;
  readonly fromState: string | null;
  readonly toState: string | null;
  /** The slot booted when it happened. */
  readonly slot: string | null;
  readonly reason: string | null;
  readonly details: Record<string, unknown> | null;
}

/** One report waiting in (or already sent from) the outbox. */
export interface OutboxEntry {
  readonly seq: number;
  readonly id: string;
  readonly transactionId: string;
  readonly kind: 'state' | 'progress';
  readonly body: Record<string, unknown>;
  readonly sent: boolean;
}
