/** rebooting: run the reboot command; the boot that follows is picked up by resume. */
import { checkGates } from '../gates.js';
import type { Handler } from '../runner.js';

/** The rebooting handler; asks the gates again (a charge may have begun since the arming). */
export const rebooting: Handler = async (ctx, tx) => {
  await checkGates(ctx, tx);
  await ctx.reboot();
  return { outcome: 'reboot-requested' };
};
