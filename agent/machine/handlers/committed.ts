/** committed: the checks passed; X_TRY=0 makes the new slot the good one for every boot to come. */
import type { Handler } from '../runner.js';

/** The committed handler (the release was recorded when the state was persisted). */
export const committed: Handler = async (ctx, tx) => {
  await ctx.boot.setState(tx.targetSlot, 'good');
  // Loaded here, not at start-up: the delta code loads the HTTP client an install from a file does not need.
  if (tx.kind === 'install') await (await import('../../delta/handler.js')).keepCommittedIndex(ctx, tx);
  return { outcome: 'done' };
};
