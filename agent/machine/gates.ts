/**
 * What may hold an install before the agent arms the new slot and before it reboots:
 *  - the maintenance windows (server installs only): the server sends them in the signed
 *    answer, the device decides with its own clock (shared/windows.ts);
 *  - the busy gate (config `busyGate`): a command that says "busy, do not reboot now" with
 *    exit code 75, bounded by maxWaitSeconds from the first "busy" of the transaction.
 * A hold throws UPDATE_HELD (transient, before any side effect of the state): the state stays
 * as persisted and the daemon asks again after `retryAfterMs`. Each hold is recorded once per
 * transaction and reason as a history event and a report, so the server shows that it waits.
 */
import { randomUUID } from 'node:crypto';
import { OtaError } from '../../shared/errors.js';
import { windowState } from '../../shared/windows.js';
import type { Transaction } from '../store/types.js';
import { readWindows } from '../infra/windows-file.js';
import type { MachineContext } from './context.js';

/** Exit code of the busy command for "busy, do not reboot now" (EX_TEMPFAIL). */
export const BUSY_EXIT = 75;

/** An update held by a window or the busy gate; `retryAfterMs` says when to ask again. */
export class HoldError extends OtaError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super('UPDATE_HELD', message);
  }
}

/** The busy command's answer: free, or busy with what it said. */
export async function askBusy(command: readonly string[], timeoutSeconds: number): Promise<{ busy: boolean; detail: string }> {
  const [cmd, ...args] = command;
  // execa is loaded by the first busy check, not at every agent's start.
  const { execa } = await import('execa');
  const r = await execa(cmd!, args, { reject: false, stdin: 'ignore', timeout: timeoutSeconds * 1000, all: true });
  const said = String(r.all ?? '').trim().slice(0, 200);
  if (r.exitCode === 0) return { busy: false, detail: said };
  if (r.exitCode === BUSY_EXIT) return { busy: true, detail: said || 'busy' };
  // No clear answer: better a late reboot than one in the middle of a charge.
  return { busy: true, detail: `no clear answer (${r.timedOut ? `timed out after ${timeoutSeconds} s` : `exit ${String(r.exitCode ?? r.signal)}`})${said ? `: ${said}` : ''}` };
}

function firstHold(ctx: MachineContext, tx: Transaction, reason: string): string | undefined {
  return ctx.store.events({ transactionId: tx.id }).find((e) => e.type === 'hold' && e.reason === reason)?.at;
}

function recordHold(ctx: MachineContext, tx: Transaction, reason: string, details: Record<string, unknown>): void {
  ctx.store.write(`transaction ${tx.id}: held (${reason})`, (w) => {
    w.event({ transactionId: tx.id, type: 'hold', fromState: tx.state, slot: ctx.booted, reason, details });
    w.report({ id: randomUUID(), transaction: tx.id, version: tx.version, state: tx.state, reason: `held:${reason}`, details: { hold: reason, ...details }, at: w.now });
  });
}

/** Throws HoldError while the install must wait; returns when it may go on. */
export async function checkGates(ctx: MachineContext, tx: Transaction): Promise<void> {
  if (tx.kind !== 'install') return;
  const now = ctx.now?.() ?? new Date();
  if (tx.origin === 'server') {
    const windows = await readWindows(ctx.config.dataDir);
    const w = windowState(windows, now);
    if (!w.open) {
      if (!firstHold(ctx, tx, 'window')) recordHold(ctx, tx, 'window', { opensInMinutes: w.opensInMinutes, windows });
      ctx.log(`transaction ${tx.id}: outside the maintenance windows; waiting (the next opens in ${w.opensInMinutes} min)`);
      throw new HoldError(`transaction ${tx.id}: outside the maintenance windows (the next opens in ${w.opensInMinutes} min)`, w.opensInMinutes * 60_000);
    }
  }
  const gate = ctx.config.busyGate;
  if (!gate) return;
  const answer = await askBusy(gate.command, gate.timeoutSeconds);
  if (!answer.busy) return;
  const since = firstHold(ctx, tx, 'busy');
  const waited = since ? (now.getTime() - Date.parse(since)) / 1000 : 0;
  if (waited >= gate.maxWaitSeconds) {
    ctx.log(`transaction ${tx.id}: the busy gate still says busy (${answer.detail}) after ${Math.round(waited)} s; going on (busyGate.maxWaitSeconds ${gate.maxWaitSeconds})`);
    if (!firstHold(ctx, tx, 'busy-timeout')) recordHold(ctx, tx, 'busy-timeout', { waitedSeconds: Math.round(waited), said: answer.detail });
    return;
  }
  if (!since) recordHold(ctx, tx, 'busy', { said: answer.detail, maxWaitSeconds: gate.maxWaitSeconds });
  ctx.log(`transaction ${tx.id}: busy (${answer.detail}); not rebooting now, asking again in ${gate.recheckSeconds} s`);
  throw new HoldError(`transaction ${tx.id}: the device is busy (${answer.detail})`, Math.min(gate.recheckSeconds, gate.maxWaitSeconds - waited) * 1000);
}
