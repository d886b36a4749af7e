/**
 * How grub/ota-select.cfg reads the env, mirrored for the agent: which slot it boots next and
 * what counts as OK or exhausted. Pure functions, so they are tested against the script's
 * documented decision table without running GRUB.
 */
import { SLOT_NAMES, type SlotName } from '../config/types.js';
import type { SlotBootState } from './bootloader.js';

/** MAX_TRIES as the script reads it: 1 to 5, anything else 3. */
export function maxTries(env: Record<string, string>): number {
  const n = env.MAX_TRIES;
  return n !== undefined && /^[1-5]$/.test(n) ? Number(n) : 3;
}

/** ORDER as the script reads it: known names in order, then any left out. */
export function slotOrder(env: Record<string, string>): SlotName[] {
  const out: SlotName[] = [];
  for (const s of [...(env.ORDER ?? '').split(/\s+/), ...SLOT_NAMES]) {
    if ((s === 'A' || s === 'B') && !out.includes(s)) out.push(s);
  }
  return out;
}

/** A slot's state as the script reads it: missing OK is bootable; a garbled counter is exhausted. */
export function slotState(env: Record<string, string>, slot: SlotName): SlotBootState {
  const ok = env[`${slot}_OK`];
  const tries = env[`${slot}_TRY`];
  const n = tries === undefined || tries === '' ? 0 : /^\d{1,3}$/.test(tries) ? Number(tries) : maxTries(env);
  return { ok: ok === undefined || ok === '' || ok === '1', tries: n };
}

/** The slot the script will boot next. */
export function nextBoot(env: Record<string, string>): SlotName {
  const order = slotOrder(env);
  const max = maxTries(env);
  const pick = order.find((s) => {
    const st = slotState(env, s);
    return st.ok && st.tries < max;
  });
  // No slot qualifies: the script resets the counters and prefers an OK slot.
  return pick ?? order.find((s) => slotState(env, s).ok) ?? order[0]!;
}

/** Parses `grub-editenv list` output. */
export function parseEnvList(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}
