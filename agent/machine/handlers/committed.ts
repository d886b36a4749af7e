/** committed: the checks passed; X_TRY=0 makes the new slot the good one for every boot to come. */
import type { Handler } from '../runner.js';
import { keepCommittedIndex } from '../../delta/handler.js';

/** The committed handler (the release was recorded when the state was persisted). */
export const committed: Handler = async (ctx, tx) => {
  await ctx.boot.setState(tx.targetSlot, 'good');
  if (tx.kind === 'install') await keepCommittedIndex(ctx, tx);
  return { outcome: 'done' };
};
