/**
 * Runs a transaction through the table. Each new state is persisted (with its history event,
 * its report and the slot bookkeeping, in one store write) *before* its handler runs, so a
 * crash at any point resumes in a state whose handler can simply run again. Entering a state
 * counts a transition; past the limit the table's `loop` exit is taken instead.
 */
import { formatError } from '../../shared/cli.js';
import { OtaError, isOtaError } from '../../shared/errors.js';
import { stateReached } from '../durable.js';
import type { NewTransaction } from '../store/transactions.js';
import type { StoreWriter } from '../store/store.js';
import type { Transaction } from '../store/types.js';
import type { MachineContext } from './context.js';
import { HANDLERS } from './handlers/registry.js';
import { finalReport, stateReport } from './reports.js';
import { resumePoint } from './resume.js';
import { isFinal, type State } from './states.js';
import { nextState, transitionLimit, type Outcome } from './table.js';
import '../errors.js';

/** What a state's handler returns. */
export interface HandlerResult {
  readonly outcome: Outcome;
  /** Recorded on the transaction when it leads to a failure or rollback. */
  readonly reason?: string;
  /** Stored with the transition's history event. */
  readonly details?: Record<string, unknown>;
}

/** A state's handler. It must be idempotent: after a crash it runs again from the start. */
export type Handler = (ctx: MachineContext, tx: Transaction) => Promise<HandlerResult>;

/** Where a run stopped. */
export interface RunResult {
  readonly tx: Transaction;
  /** `finished`: the transaction ended; `awaiting-reboot`: the reboot command ran. */
  readonly status: 'finished' | 'awaiting-reboot';
}

/** The reason recorded for a fatal error in `state`: `download:<CODE>` or `install:<CODE>`. */
export function fatalReason(err: unknown, state: State): string {
  const code = isOtaError(err) ? err.code : 'INTERNAL';
  if (state === 'downloading' && /^(DOWNLOAD_|SOURCE_|BUNDLE_TRUNCATED$)/.test(code)) return `download:${code}`;
  return `install:${code}`;
}

/** Slot records that change when a state is entered (same store write as the state). */
function slotBookkeeping(w: StoreWriter, tx: Transaction, state: State): void {
  const target = tx.targetSlot;
  if (tx.kind === 'install') {
    if (state === 'downloading') w.slot(target, { version: tx.version, status: 'installing', transactionId: tx.id });
    else if (state === 'armed') w.slotStatus(target, 'installed');
    else if (state === 'committed') {
      w.slot(target, { version: tx.version, status: 'committed', transactionId: tx.id });
      w.committedVersion(tx.version);
    } else if (state === 'rolled-back' || state === 'failed') w.slotStatus(target, 'bad');
  } else if (state === 'failed' && tx.reason === 'boot-failed') {
    w.slotStatus(target, 'bad');
  }
}

/** The state machine of one device. */
export class Machine {
  constructor(private readonly ctx: MachineContext) {}

  private get store() {
    return this.ctx.store;
  }

  /** Persists a new transaction in its first state (counted as its first transition). */
  start(init: NewTransaction): Transaction {
    const tx = this.store.write(`start transaction ${init.id} in ${init.state}`, (w) => {
      const t = w.insert(init);
      w.event({ transactionId: t.id, type: 'transition', toState: t.state, slot: this.ctx.booted, reason: t.reason, details: { kind: t.kind, source: t.source, target: t.targetSlot } });
      w.report(stateReport(t, t.state, w.now));
      slotBookkeeping(w, t, t.state);
      return t;
    });
    this.ctx.log(`transaction ${tx.id}: ${tx.kind} ${tx.version} into slot ${tx.targetSlot}: ${tx.state}`);
    stateReached(tx.state);
    return tx;
  }

  /** Enters `next` (or the loop exit when over the limit), persisting it before anything else. */
  enter(tx: Transaction, next: State, reason?: string, details?: Record<string, unknown>): Transaction {
    let to = next;
    let why = reason;
    if (!isFinal(next) && tx.transitions >= transitionLimit(next, this.ctx.config.maxTransitions)) {
      to = nextState(next, 'loop') as State;
      why = 'loop';
    }
    const t = this.store.write(`transaction ${tx.id}: ${tx.state} -> ${to}`, (w) => {
      const entered = w.enter(tx, to, why ?? null);
      w.event({ transactionId: tx.id, type: 'transition', fromState: tx.state, toState: to, slot: this.ctx.booted, reason: why ?? null, details: details ?? null });
      if (!isFinal(to)) w.report(stateReport(entered, to, w.now));
      slotBookkeeping(w, entered, to);
      return entered;
    });
    this.ctx.log(`transaction ${tx.id}: ${tx.state} -> ${to}${why ? ` (${why})` : ''}`);
    stateReached(to);
    return t;
  }

  /** Marks the transaction finished and queues its final report. */
  private finish(tx: Transaction): Transaction {
    const health = this.store.events({ transactionId: tx.id }).filter((e) => e.type === 'health').pop();
    return this.store.write(`transaction ${tx.id}: finished ${tx.state}`, (w) => {
      const t = w.finish(tx);
      w.report(finalReport(t, w.now, health?.details ? { health: health.details } : {}));
      return t;
    });
  }

  /** Records `err` in the transaction's history, the state left as it is; returns `err` to throw. */
  private recordError(tx: Transaction, err: unknown): unknown {
    this.store.write(`transaction ${tx.id}: error in ${tx.state}`, (w) =>
      w.event({ transactionId: tx.id, type: 'error', fromState: tx.state, slot: this.ctx.booted, details: { error: formatError(err) } }),
    );
    return err;
  }

  /** Runs handlers from the transaction's current state until it ends or waits for a reboot. */
  async run(start: Transaction): Promise<RunResult> {
    let tx = start;
    for (;;) {
      // Asked to stop (SIGTERM): the state is persisted and its handler has not run, which is
      // exactly what start-up recovery resumes from.
      // Recorded like a stop inside a handler, so the history says why the transaction waits.
      if (this.ctx.signal?.aborted) throw this.recordError(tx, new OtaError('AGENT_STOPPED', `transaction ${tx.id}: stopped before the ${tx.state} step; it resumes at the next start`));
      let result: HandlerResult;
      try {
        result = await HANDLERS[tx.state](this.ctx, tx);
      } catch (err) {
        // Transient: leave the state as it is; the next start of the agent resumes it.
        // A hold is no error: the gates recorded it once already.
        if (isOtaError(err, 'UPDATE_HELD')) throw err;
        if ((isOtaError(err) && err.kind === 'transient') || isFinal(tx.state)) throw this.recordError(tx, err);
        result = { outcome: 'fatal', reason: fatalReason(err, tx.state), details: { error: formatError(err) } };
      }
      tx = this.store.transaction(tx.id)!;
      const next = nextState(tx.state, result.outcome);
      if (next === 'end') return { tx: this.finish(tx), status: 'finished' };
      if (next === 'await-boot') return { tx, status: 'awaiting-reboot' };
      tx = this.enter(tx, next, result.reason, result.details);
    }
  }

  /** Start-up recovery: enters the state resume.ts picks for what the boot shows, and runs on. */
  async resume(tx: Transaction): Promise<RunResult> {
    const point = resumePoint(tx, { booted: this.ctx.booted, env: await this.ctx.boot.env() });
    return this.run(this.enter(tx, point.state, point.reason, { resumed: tx.state }));
  }
}
