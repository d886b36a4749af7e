/**
 * The whole transaction graph in one table: (state, outcome of its handler) → next state.
 * `await-boot` stops the machine until the system has rebooted (resume.ts picks up from
 * there); `end` means the transaction is over. Review the graph here, nowhere else.
 */
import type { State } from './states.js';

/** What a state's handler can report. */
export type Outcome =
  /** downloading: every payload written, verified while streaming, fsynced. */
  | 'written'
  /** installed: the slot read back as written. */
  | 'verified'
  /** armed: the bootloader boots the target next. */
  | 'armed'
  /** rebooting / rolling-back: the reboot command ran; the machine waits for the boot. */
  | 'reboot-requested'
  /** verifying: every health check passed. */
  | 'healthy'
  /** verifying: a check failed or the deadline passed (reason `health-check:<name>` or `timeout`). */
  | 'unhealthy'
  /** rolling-back: running on the slot rolled back to. */
  | 'on-restore-slot'
  /** A fatal error (the reason names its code). */
  | 'fatal'
  /** Entered too many states: the transaction is stopped with reason `loop`. */
  | 'loop'
  /** A final state's handler completed. */
  | 'done';

/** Where an outcome leads. */
export type Next = State | 'await-boot' | 'end';

/** The transition table. A missing (state, outcome) pair is a bug and throws. */
export const TRANSITIONS: Readonly<Record<State, Readonly<Partial<Record<Outcome, Next>>>>> = {
  // Nothing armed yet: any failure only has to keep the target disarmed.
  downloading: { written: 'installed', fatal: 'failed', loop: 'failed' },
  installed: { verified: 'armed', fatal: 'failed', loop: 'failed' },
  armed: { armed: 'rebooting', fatal: 'failed', loop: 'failed' },
  rebooting: { 'reboot-requested': 'await-boot', fatal: 'failed', loop: 'failed' },
  // Running on the target: every way out that is not a commit goes back to the old slot.
  verifying: { healthy: 'committed', unhealthy: 'rolling-back', fatal: 'rolling-back', loop: 'rolling-back' },
  committed: { done: 'end' },
  'rolling-back': { 'on-restore-slot': 'rolled-back', 'reboot-requested': 'await-boot', fatal: 'failed', loop: 'failed' },
  'rolled-back': { done: 'end' },
  failed: { done: 'end' },
};

/** The next step for (state, outcome); throws on a pair the table does not allow. */
export function nextState(state: State, outcome: Outcome): Next {
  const next = TRANSITIONS[state][outcome];
  if (next === undefined) throw new Error(`state machine: outcome "${outcome}" is not allowed in state "${state}"`);
  return next;
}

/**
 * How many entries a transaction may make before entering `state` counts as a loop.
 * Rolling back gets twice the budget: it is the way out of a loop and must have room to finish.
 */
export function transitionLimit(state: State, maxTransitions: number): number {
  return state === 'rolling-back' ? maxTransitions * 2 : maxTransitions;
}
