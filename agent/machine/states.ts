/**
 * The persisted states of an update transaction (DESIGN §6). The names are stored in the
 * device's database and sent to the server, so they are stable strings: a device upgrades
 * its agent in the middle of a transaction and the new agent must read what the old wrote.
 */

/** Every state, in the order a successful install passes them, then the failure states. */
export const STATES = [
  'downloading',
  'installed',
  'armed',
  'rebooting',
  'verifying',
  'committed',
  'rolling-back',
  'rolled-back',
  'failed',
] as const;

/** A transaction state. */
export type State = (typeof STATES)[number];

/** States in which a transaction has ended (their handler still runs once, to finish it). */
export const FINAL_STATES: readonly State[] = ['committed', 'rolled-back', 'failed'];

/** True when `s` is a known state name. */
export function isState(s: string): s is State {
  return (STATES as readonly string[]).includes(s);
}

/** True when `s` ends a transaction. */
export function isFinal(s: State): boolean {
  return FINAL_STATES.includes(s);
}
