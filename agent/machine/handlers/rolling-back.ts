/**
 * rolling-back: make the restore slot primary and reboot into it. For an install, the new
 * slot is marked bad in the same env write (X_OK=0 ORDER="Y X"); a technician rollback keeps
 * the slot it leaves bootable, as a fallback should the other one not come up.
 */
import type { Handler } from '../runner.js';
import { STEP_ROLLBACK_ENV, restoreSlot } from '../resume.js';

/** The rolling-back handler. */
export const rollingBack: Handler = async (ctx, tx) => {
  const restore = restoreSlot(tx);
  const disableOther = tx.kind === 'install';
  if (ctx.booted === restore) {
    // Already there (we rebooted, or GRUB fell back by itself): the failed slot must stay off.
    // After a technician rollback nothing is left to write: the boot check assesses this boot.
    if (disableOther) await ctx.boot.setPrimary(restore, { disableOther });
    return { outcome: 'on-restore-slot' };
  }
  await ctx.boot.setPrimary(restore, { disableOther });
  ctx.store.write(`transaction ${tx.id}: rollback env written`, (w) => w.progress(tx, { step: STEP_ROLLBACK_ENV }));
  await ctx.reboot();
  return { outcome: 'reboot-requested' };
};
