/** armed: one env write makes the target the slot booted next: X_OK=1 X_TRY=0 ORDER="X Y". */
import { checkGates } from '../gates.js';
import type { Handler } from '../runner.js';
import { assertInactiveTarget } from './guard.js';

/** The armed handler; a maintenance window or the busy gate may hold it before the env write. */
export const armed: Handler = async (ctx, tx) => {
  assertInactiveTarget(ctx, tx);
  await checkGates(ctx, tx);
  await ctx.boot.setPrimary(tx.targetSlot);
  return { outcome: 'armed' };
};
