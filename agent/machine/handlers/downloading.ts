/**
 * downloading: disarm the target (X_OK=0) before its first byte, then stream the verified
 * bundle's payloads into it (hashed on the way; the reader fails the stream on any mismatch)
 * and fsync. Each fsync checkpoint records the resume point, so a restarted download goes on
 * from there. Records what the slot must read back as before moving on.
 */
import { OtaError } from '../../../shared/errors.js';
import { slotBackend } from '../../boot/slots/backend.js';
import { withMounted } from '../../boot/slots/mount.js';
import type { DurablePoint } from '../../boot/slots/types.js';
import type { Transaction } from '../../store/types.js';
import { slotConfig, type LiveBundle, type MachineContext } from '../context.js';
import { progressReport } from '../reports.js';
import type { Handler } from '../runner.js';
import { assertInactiveTarget } from './guard.js';
import { bundleFor } from './open-bundle.js';
import { deltaFor, keepIndexOf } from '../../delta/handler.js';
import { runDelta } from '../../delta/run.js';
import { forgetSlotIndex } from '../../delta/slot-index.js';

function recordDurable(ctx: MachineContext, tx: Transaction, bundle: LiveBundle, point: DurablePoint): void {
  ctx.store.write(`transaction ${tx.id}: ${point.slotBytes} slot bytes durable`, (w) => {
    const t = w.progress(tx, {
      bytesRead: bundle.bytesRead(),
      resumeIndex: point.resume?.index ?? null,
      resumeDataOffset: point.resume?.dataOffset ?? null,
      durableOffset: point.resume?.offset ?? 0,
    });
    if (t.bytesTotal) w.report(progressReport(t, bundle.bytesRead(), t.bytesTotal, w.now), 'progress');
  });
}

/** The downloading handler. */
export const downloading: Handler = async (ctx, tx) => {
  assertInactiveTarget(ctx, tx);
  await ctx.boot.setState(tx.targetSlot, 'bad');
  const target = slotConfig(ctx.config, tx.targetSlot);
  const active = slotConfig(ctx.config, ctx.booted);
  await forgetSlotIndex(ctx.config.dataDir, tx.targetSlot);
  const delta = await deltaFor(ctx, tx, target, active);
  if (delta) return runDelta(ctx, tx, target, active, delta);
  const bundle = await bundleFor(ctx, tx, target);
  const modules = bundle.reader.manifest.modules;
  // A module-only bundle copies the running system first, so that slot must be mounted too.
  const needsActive = target.kind === 'fs' && !modules.some((m) => m.type === 'archive');
  const backend = slotBackend(target);
  const timer = setInterval(() => ctx.onProgress?.(bundle.bytesRead(), tx.bytesTotal), 200);
  let result;
  try {
    result = await withMounted(needsActive ? [target, active] : [target], () =>
      backend.write(bundle.reader.payloads(), {
        modules,
        active,
        checkpointBytes: ctx.config.checkpointBytes,
        onDurable: (point) => recordDurable(ctx, tx, bundle, point),
      }),
    );
  } finally {
    clearInterval(timer);
  }
  ctx.onProgress?.(bundle.bytesRead(), tx.bytesTotal);
  await keepIndexOf(ctx, tx, bundle);
  if (!bundle.reader.complete) throw new OtaError('BUNDLE_TRUNCATED', `bundle ${tx.source ?? ''}: payloads ended before the end of the archive`);
  ctx.store.write(`transaction ${tx.id}: slot ${tx.targetSlot} written`, (w) => {
    w.progress(tx, { bytesRead: bundle.bytesRead(), slotDigest: JSON.stringify(result.digest) });
  });
  return { outcome: 'written', details: { ...result.stats, digest: result.digest } };
};
