/**
 * failed: leave the device as it was before the transaction. An install's target may hold a
 * partial image: it stays disarmed. A technician rollback whose slot did not boot marks that
 * slot bad; one that failed otherwise gives the primary back to the running slot.
 */
import type { Handler } from '../runner.js';

/** The failed handler. */
export const failed: Handler = async (ctx, tx) => {
  if (tx.kind === 'rollback' && tx.reason !== 'boot-failed') {
    await ctx.boot.setPrimary(ctx.booted);
  } else if (ctx.booted !== tx.targetSlot) {
    await ctx.boot.setState(tx.targetSlot, 'bad');
  }
  return { outcome: 'done' };
};
