/**
 * Every durable write of the agent (store commit, slot fsync, grubenv rename, report marked
 * sent, enrollment file renamed into place) is announced here once it has completed. That gives power-cut tests one place to
 * cut: `OTA_CRASH_AFTER_WRITE=k` makes the process SIGKILL itself right after the k-th
 * durable write, and `OTA_CRASH_AT_STATE=<state>` right after that state is persisted.
 * `OTA_DURABLE_TRACE=<file>` appends one line per write, so a harness can count the points
 * of a run before cutting at each of them.
 */
import { appendFileSync } from 'node:fs';

/** What kind of durable write completed. */
export type DurableKind = 'store' | 'slot-sync' | 'grubenv' | 'report-sent' | 'enrollment' | 'ubootenv' | 'autoboot';

let count = 0;

function parseCrashAfter(): number | undefined {
  const v = process.env.OTA_CRASH_AFTER_WRITE;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function die(): never {
  // SIGKILL, not exit(): no handler, no flush, exactly what a power cut leaves behind.
  process.kill(process.pid, 'SIGKILL');
  // process.kill on ourselves with SIGKILL does not return; this keeps the type checker honest.
  throw new Error('unreachable: SIGKILL did not stop the process');
}

/** Records that a durable write finished; cuts the process here when asked to. */
export function durableWritten(kind: DurableKind, what: string): void {
  count++;
  const trace = process.env.OTA_DURABLE_TRACE;
  if (trace) appendFileSync(trace, `${count}\t${kind}\t${what}\n`);
  if (count === parseCrashAfter()) die();
}

/** Runs a synchronous durable write and announces it. */
export function durably<T>(kind: DurableKind, what: string, write: () => T): T {
  const result = write();
  durableWritten(kind, what);
  return result;
}

/** Runs an asynchronous durable write and announces it. */
export async function durablyAsync<T>(kind: DurableKind, what: string, write: () => Promise<T>): Promise<T> {
  const result = await write();
  durableWritten(kind, what);
  return result;
}

/** Cuts the process right after `state` was persisted when OTA_CRASH_AT_STATE names it. */
export function stateReached(state: string): void {
  if (process.env.OTA_CRASH_AT_STATE === state) die();
}

/** Durable writes so far in this process (for tests and traces). */
export function durableCount(): number {
  return count;
}
