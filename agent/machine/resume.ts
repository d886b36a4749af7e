/**
 * Start-up recovery: the transaction's persisted state, plus what the boot tells us (the slot
 * we run from, the grubenv), decide which state to enter again. Every state's handler is
 * idempotent, so "enter it again" is always safe; the cases below only decide *which* state,
 * because a reboot (or a power cut, which is one) may have happened since it was persisted.
 */
import { slotState } from '../boot/grubenv.js';
import { otherSlot, type SlotName } from '../config/types.js';
import type { Transaction } from '../store/types.js';
import type { State } from './states.js';

/** What start-up knows about the boot. */
export interface BootFacts {
  readonly booted: SlotName;
  readonly env: Readonly<Record<string, string>>;
}

/** The state to enter, and the reason to record when it changes the outcome. */
export interface ResumePoint {
  readonly state: State;
  readonly reason?: string;
}

/** The slot a rollback returns to: the old slot of an install, the target of a technician rollback. */
export function restoreSlot(tx: Transaction): SlotName {
  return tx.kind === 'install' ? tx.sourceSlot : tx.targetSlot;
}

/** Sub-step recorded once the rolling-back env write is done (see rolling-back handler). */
export const STEP_ROLLBACK_ENV = 'env-written';

/** State found on disk → state to resume. */
export function resumePoint(tx: Transaction, boot: BootFacts): ResumePoint {
  const target = tx.targetSlot;
  switch (tx.state) {
    case 'downloading':
    case 'installed':
      // The target is disarmed (X_OK=0) from before the first byte, so GRUB boots it only if
      // nothing else qualifies. Running from it now, we must not write it: fail cleanly.
      if (boot.booted === target) return { state: 'failed', reason: 'install:SLOT_ACTIVE' };
      return { state: tx.state };

    case 'armed':
    case 'rebooting': {
      // Up on the target: the reboot into the new slot happened (GRUB counted the try).
      if (boot.booted === target) return { state: 'verifying' };
      const t = slotState(boot.env, target);
      // Armed (OK=1, TRY=0) and yet a try was used while we are on the old slot: GRUB
      // booted the target, it did not come up, and GRUB fell back.
      if (t.ok && t.tries > 0) return { state: 'rolling-back', reason: 'boot-failed' };
      // Not armed yet (the env write did not happen): arm again. Armed but never booted
      // (killed before, or instead of, the reboot): reboot again.
      return { state: tx.state === 'armed' || !t.ok ? 'armed' : 'rebooting' };
    }

    case 'verifying':
      // Back on the old slot while checking the new one: the new slot went down (panic,
      // watchdog, power) and GRUB fell back to the old one after MAX_TRIES.
      return boot.booted === target ? { state: 'verifying' } : { state: 'rolling-back', reason: 'boot-failed' };

    case 'rolling-back': {
      const restore = restoreSlot(tx);
      // A technician rollback keeps the slot it leaves bootable; if GRUB tried the slot we
      // switched to and came back, that slot does not boot: the rollback failed.
      if (
        tx.kind === 'rollback' &&
        boot.booted === otherSlot(restore) &&
        tx.step === STEP_ROLLBACK_ENV &&
        slotState(boot.env, restore).tries > 0
      ) {
        return { state: 'failed', reason: 'boot-failed' };
      }
      // On the restore slot the handler finishes; elsewhere it writes the env and reboots again.
      return { state: 'rolling-back' };
    }

    case 'committed':
    case 'rolled-back':
    case 'failed':
      // Decided already; the final handler (bootloader write) may not have completed.
      return { state: tx.state };
  }
}
