/** rebooting: run the reboot command; the boot that follows is picked up by resume. */
import type { Handler } from '../runner.js';

/** The rebooting handler. */
export const rebooting: Handler = async (ctx) => {
  await ctx.reboot();
  return { outcome: 'reboot-requested' };
};
