/**
 * installed: read the slot back (after the fsync, and after an unmount/mount where the slot
 * has those commands, so caches do not answer) and compare with what was written. Flash that
 * silently drops writes is caught here, before the slot can ever be booted.
 */
import { OtaError } from '../../../shared/errors.js';
import { slotBackend } from '../../boot/slots/backend.js';
import { withMounted } from '../../boot/slots/mount.js';
import type { SlotDigest } from '../../boot/slots/types.js';
import { slotConfig } from '../context.js';
import type { Handler } from '../runner.js';
import { assertInactiveTarget } from './guard.js';

/** The installed handler. */
export const installed: Handler = async (ctx, tx) => {
  assertInactiveTarget(ctx, tx);
  if (!tx.slotDigest) throw new OtaError('READBACK_MISMATCH', `transaction ${tx.id}: no record of what slot ${tx.targetSlot} should hold`);
  const expected = JSON.parse(tx.slotDigest) as SlotDigest;
  const target = slotConfig(ctx.config, tx.targetSlot);
  const backend = slotBackend(target);
  const actual = await withMounted([target], () => backend.readBack(expected));
  if (actual.sha256 !== expected.sha256 || JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new OtaError(
      'READBACK_MISMATCH',
      `slot ${tx.targetSlot} (${target.path}) reads back as ${JSON.stringify(actual)}, but ${JSON.stringify(expected)} was written`,
    );
  }
  return { outcome: 'verified', details: { readBack: actual } };
};
