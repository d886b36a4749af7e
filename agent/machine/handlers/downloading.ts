/**
 * downloading: disarm the target (X_OK=0) before its first byte, then stream the verified
 * bundle's payloads into it (hashed on the way, the reader failing the stream on any mismatch;
 * a raw slot instead checks an uncompressed image's signed hash on its read-back before the
 * write returns) and fsync. Each fsync checkpoint records the resume point, so a restarted download goes on
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
  // The delta code (and the HTTP client its range reader loads) is loaded only where a delta
  // is possible (prepareDelta's own first conditions) or already prepared by install().
  const deltaPossible = ctx.live ? ctx.live.delta !== undefined : ctx.config.delta.enabled && target.kind === 'raw' && active.kind === 'raw';
  const delta = deltaPossible ? await (await import('../../delta/handler.js')).deltaFor(ctx, tx, target, active) : undefined;
  if (delta) return (await import('../../delta/run.js')).runDelta(ctx, tx, target, active, delta);
  const bundle = await bundleFor(ctx, tx, target);
  const modules = bundle.reader.manifest.modules;
  // A module-only bundle copies the running system first, so that slot must be mounted too.
  const needsActive = target.kind === 'fs' && !modules.some((m) => m.type === 'archive');
  const backend = slotBackend(target);
  // An indexed image's index is kept for the next update's delta (agent/delta/handler.ts). That
  // code is loaded at the first checkpoint, while the main thread mostly waits for the storage,
  // rather than before the first payload byte or after the last.
  const indexed = modules.some((m) => m.type === 'image' && m.index);
  let deltaHandler: Promise<typeof import('../../delta/handler.js')> | undefined;
  const loadDeltaHandler = (): Promise<typeof import('../../delta/handler.js')> => {
    if (!deltaHandler) {
      deltaHandler = import('../../delta/handler.js');
      deltaHandler.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
    }
    return deltaHandler;
  };
  const timer = setInterval(() => ctx.onProgress?.(bundle.bytesRead(), tx.bytesTotal), 200);
  let result;
  try {
    result = await withMounted(needsActive ? [target, active] : [target], () =>
      backend.write(bundle.reader.payloads(), {
        modules,
        active,
        checkpointBytes: ctx.config.checkpointBytes,
        onDurable: (point) => {
          recordDurable(ctx, tx, bundle, point);
          if (indexed) void loadDeltaHandler();
        },
      }),
    );
  } finally {
    clearInterval(timer);
  }
  ctx.onProgress?.(bundle.bytesRead(), tx.bytesTotal);
  if (indexed) await (await loadDeltaHandler()).keepIndexOf(ctx, tx, bundle);
  if (!bundle.reader.complete) throw new OtaError('BUNDLE_TRUNCATED', `bundle ${tx.source ?? ''}: payloads ended before the end of the archive`);
  ctx.store.write(`transaction ${tx.id}: slot ${tx.targetSlot} written`, (w) => {
    w.progress(tx, { bytesRead: bundle.bytesRead(), slotDigest: JSON.stringify(result.digest) });
  });
  return { outcome: 'written', details: { ...result.stats, digest: result.digest } };
};
