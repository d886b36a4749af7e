/** The one rule every slot write obeys: never the slot the system runs from. */
import { OtaError } from '../../../shared/errors.js';
import type { Transaction } from '../../store/types.js';
import type { MachineContext } from '../context.js';

/** Throws SLOT_ACTIVE when the transaction's target is the booted slot. */
export function assertInactiveTarget(ctx: MachineContext, tx: Transaction): void {
  if (tx.targetSlot === ctx.booted) {
    throw new OtaError('SLOT_ACTIVE', `transaction ${tx.id}: its target slot ${tx.targetSlot} is the slot the system runs from`);
  }
}
