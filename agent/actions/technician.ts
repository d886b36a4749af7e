/**
 * What a technician (or a server directive) can do besides installing: switch back to the
 * other slot when it holds a committed release, and mark the running slot good or bad.
 * During a transaction, mark-good/mark-bad act on it: in `verifying` they decide the outcome
 * the health checks would have decided; in any other state they are refused.
 */
import { randomUUID } from 'node:crypto';
import { OtaError } from '../../shared/errors.js';
import { otherSlot } from '../config/types.js';
import { machineFor, type Device } from './device.js';
import type { RunResult } from '../machine/runner.js';
import type { Transaction } from '../store/types.js';

function refuseInFlight(tx: Transaction | undefined, what: string): void {
  if (tx) throw new OtaError('TRANSACTION_IN_PROGRESS', `cannot ${what}: transaction ${tx.id} (${tx.kind} ${tx.version}) is in state ${tx.state}`);
}

/** Switches to the other slot if it holds a committed release, and reboots into it. */
export async function rollback(
  dev: Device,
  opts: { origin?: 'local' | 'server'; directiveId?: string; log?: (l: string) => void; signal?: AbortSignal } = {},
): Promise<RunResult> {
  refuseInFlight(dev.store.current(), 'roll back');
  const other = otherSlot(dev.booted);
  const info = dev.store.slots()[other];
  if (info.status !== 'committed') {
    throw new OtaError('ROLLBACK_UNAVAILABLE', `slot ${other} holds no committed release (its state is ${info.status}${info.version ? `, version ${info.version}` : ''}); staying on slot ${dev.booted}`);
  }
  const machine = machineFor(dev, { ...(opts.log ? { log: opts.log } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
  const tx = machine.start({
    id: randomUUID(),
    kind: 'rollback',
    origin: opts.origin ?? 'local',
    directiveId: opts.directiveId ?? null,
    version: info.version ?? 'unknown',
    state: 'rolling-back',
    sourceSlot: dev.booted,
    targetSlot: other,
    reason: 'technician',
  });
  return machine.run(tx);
}

/** A technician's verdict on the running slot. */
export type Verdict = 'good' | 'bad';

/** What each verdict does: the state a transaction being verified enters, and the slot's new status. */
const VERDICTS = {
  good: { enters: 'committed', slotStatus: 'committed' },
  bad: { enters: 'rolling-back', slotStatus: 'bad' },
} as const;

/** What mark-good / mark-bad did. */
export interface MarkResult {
  readonly slot: string;
  /** The transaction it decided, if one was being verified. */
  readonly transaction?: RunResult;
}

/**
 * Marks the running slot good or bad. With a transaction verifying the running slot, decides it
 * as the health checks would have (good commits it, bad rolls it back); with one in any other
 * state, refuses; with none, sets the slot's boot variables and its status in the store.
 */
export async function markSlot(dev: Device, verdict: Verdict, log?: (l: string) => void): Promise<MarkResult> {
  const command = `mark-${verdict}`;
  const tx = dev.store.current();
  if (tx) {
    if (tx.state !== 'verifying' || tx.targetSlot !== dev.booted) {
      throw new OtaError('MARK_REFUSED', `transaction ${tx.id} is in state ${tx.state}; ${command} only decides one that is verifying the running slot`);
    }
    const machine = machineFor(dev, log ? { log } : {});
    const entered = machine.enter(tx, VERDICTS[verdict].enters, 'technician', { technician: command });
    return { slot: dev.booted, transaction: await machine.run(entered) };
  }
  await dev.boot.setState(dev.booted, verdict);
  dev.store.write(`slot ${dev.booted} marked ${verdict}`, (w) => {
    w.slotStatus(dev.booted, VERDICTS[verdict].slotStatus);
    w.event({ type: 'technician', slot: dev.booted, reason: command, details: { slot: dev.booted } });
  });
  return { slot: dev.booted };
}
