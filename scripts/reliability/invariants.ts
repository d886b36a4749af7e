/**
 * The power-cut invariants of issue 7 as pure functions over what was observed of a device
 * (its grubenv, what each slot's bytes are, what its store says) and of the server (the
 * device's history). Each returns the violations found, one sentence each; none is a pass.
 */

/** A slot name. */
export type Slot = 'A' | 'B';

/** What one slot was seen to be. */
export interface SlotSeen {
  /** Bootable by grubenv (`X_OK=1`, or unset, which GRUB's script treats as bootable). */
  ok: boolean;
  /** The release whose bytes it holds ('factory', a version), or null for bytes of none. */
  holds: string | null;
  /** What the agent's store says it holds. */
  store: { version: string | null; status: string };
}

/** A device observed while powered off. */
export interface DeviceSeen {
  /** The slot last booted (`ota.slot=` of the kernel command line), null before any boot. */
  booted: Slot | null;
  env: Record<string, string>;
  slots: Record<Slot, SlotSeen>;
  /** The store could not be opened: why. */
  storeError?: string;
}

/** The store's version of a slot's release: the factory system has no version. */
export const storeName = (version: string | null): string => version ?? 'factory';

/** Whether grubenv lets GRUB boot a slot: `X_OK` unset or 1 (grub/ota-select.cfg). */
export function envOk(env: Record<string, string>, slot: Slot): boolean {
  const v = env[`${slot}_OK`];
  return v === undefined || v === '1';
}

/**
 * At any moment (right after a cut, and at rest): every slot GRUB may boot holds the bytes of
 * a whole, verified release, and the one the store recorded for it.
 */
export function checkBootableSlots(d: DeviceSeen): string[] {
  const out: string[] = [];
  if (d.storeError) out.push(`the store does not open: ${d.storeError}`);
  for (const name of ['A', 'B'] as const) {
    const s = d.slots[name];
    if (!s.ok) continue;
    if (s.holds === null) {
      out.push(`slot ${name} is bootable (${name}_OK=${d.env[`${name}_OK`] ?? 'unset'}) but its bytes are no verified release`);
      continue;
    }
    if (d.storeError) continue;
    // The store may say "installing" (the disarm is the write after the one that says so) or
    // "unknown" (never written by the agent): the bytes decide. Where the store claims a whole
    // release, it must be the one the bytes are.
    if ((s.store.status === 'committed' || s.store.status === 'installed') && storeName(s.store.version) !== s.holds) {
      out.push(`slot ${name} holds ${s.holds} but the store says ${storeName(s.store.version)} (${s.store.status})`);
    }
  }
  return out;
}

/** How a transaction ended, as its store and the server tell it. */
export interface Ending {
  state: string;
  reason: string | null;
}

/** What a scenario expects at rest. */
export interface Expected {
  state: 'committed' | 'rolled-back' | 'failed';
  reason?: string;
  /** The slot booted at rest. */
  booted: Slot;
}

/** At rest: the transaction ended, the booted slot holds the committed release the store names. */
export function checkAtRest(d: DeviceSeen, tx: (Ending & { finished: boolean }) | undefined, inFlight: boolean, expected: Expected): string[] {
  const out = checkBootableSlots(d);
  if (d.storeError) return out;
  if (inFlight) out.push('a transaction is still in flight at rest');
  if (!tx) {
    out.push('the store holds no transaction for the update');
    return out;
  }
  if (!['committed', 'rolled-back', 'failed'].includes(tx.state) || !tx.finished) out.push(`the transaction did not end: state ${tx.state}${tx.finished ? '' : ', not finished'}`);
  if (tx.state !== 'committed' && !tx.reason) out.push(`the transaction ended ${tx.state} without a reason`);
  if (tx.state !== expected.state || (expected.reason !== undefined && tx.reason !== expected.reason)) {
    out.push(`ended ${tx.state}${tx.reason ? ` (${tx.reason})` : ''}; without the cut it ends ${expected.state}${expected.reason ? ` (${expected.reason})` : ''}`);
  }
  if (d.booted !== expected.booted) out.push(`booted slot ${d.booted ?? 'none'} at rest, expected ${expected.booted}`);
  if (d.booted) {
    const b = d.slots[d.booted];
    if (b.store.status !== 'committed') out.push(`the booted slot ${d.booted} is "${b.store.status}" in the store, not committed`);
    if (b.holds === null || b.holds !== storeName(b.store.version)) out.push(`the booted slot ${d.booted} holds ${b.holds ?? 'no verified release'}, the store says ${storeName(b.store.version)}`);
  }
  return out;
}

/** One report as the server lists it. */
export interface ServerReport {
  id: string;
  transaction: string;
  outcome: string | null;
  reason: string | null;
}

/** The server holds exactly one final outcome for the transaction, matching the device's end. */
export function checkServer(reports: readonly ServerReport[], txId: string, end: Ending): string[] {
  const out: string[] = [];
  const ids = reports.map((r) => r.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) out.push(`the server stored report ids twice: ${[...new Set(dup)].join(', ')}`);
  const finals = reports.filter((r) => r.transaction === txId && r.outcome !== null);
  if (finals.length !== 1) {
    out.push(`the server holds ${finals.length} final outcomes for transaction ${txId}, not 1`);
    return out;
  }
  const want = end.state === 'committed' ? 'success' : 'failure';
  const f = finals[0]!;
  if (f.outcome !== want) out.push(`the server's outcome is ${f.outcome}, the device ended ${end.state}`);
  if (want === 'failure' && f.reason !== end.reason) out.push(`the server's reason is ${f.reason ?? 'none'}, the device's ${end.reason ?? 'none'}`);
  return out;
}
