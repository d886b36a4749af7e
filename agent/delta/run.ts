/**
 * The downloading state of a delta install: the same transaction, the same durable progress
 * records and the same result (what the slot must read back as) as a full download, so the
 * installed state's read-back and everything after it cannot tell the two apart.
 */
import type { SlotConfig } from '../config/types.js';
import type { MachineContext } from '../machine/context.js';
import { progressReport } from '../machine/reports.js';
import type { HandlerResult } from '../machine/runner.js';
import type { Transaction } from '../store/types.js';
import { applyDelta, phasesLine } from './apply.js';
import { savePendingIndex } from './slot-index.js';
import type { DeltaStart } from './start.js';

/** Marks the transaction as a delta install, writes the slot, records what it must read back as. */
export async function runDelta(ctx: MachineContext, tx: Transaction, target: SlotConfig, active: SlotConfig, d: DeltaStart): Promise<HandlerResult> {
  const { index, module, dataOffset } = d.head.image;
  // Before the first chunk: from here on durableOffset counts image bytes, not payload bytes.
  const resuming = tx.step === 'delta';
  if (!resuming) ctx.store.write(`transaction ${tx.id}: delta install`, (w) => w.progress(tx, { step: 'delta', bytesTotal: d.plannedBytes, durableOffset: 0 }));
  const packed = (await d.head.reader.indexes()).get(module.name);
  if (packed) await savePendingIndex(ctx.config.dataDir, tx.id, packed);
  const from = resuming ? tx.durableOffset : 0;
  if (from > 0) ctx.log(`transaction ${tx.id}: resuming the delta install at image byte ${from}`);
  const total = resuming ? null : d.plannedBytes;
  const timer = setInterval(() => ctx.onProgress?.(d.src.stats.bytes, total), 200);
  let result;
  const t0 = Date.now();
  try {
    result = await applyDelta({
      target,
      active,
      index,
      have: d.have,
      dataOffset,
      src: d.src,
      plan: ctx.config.delta,
      from,
      checkpointBytes: ctx.config.checkpointBytes,
      onDurable: (at) =>
        ctx.store.write(`transaction ${tx.id}: ${at} image bytes durable`, (w) => {
          const t = w.progress(tx, { bytesRead: d.src.stats.bytes, durableOffset: at });
          if (t.bytesTotal) w.report(progressReport(t, Math.min(d.src.stats.bytes, t.bytesTotal), t.bytesTotal, w.now), 'progress');
        }),
    });
  } finally {
    clearInterval(timer);
    d.src.close?.();
  }
  ctx.onProgress?.(d.src.stats.bytes, total);
  ctx.log(`transaction ${tx.id}: delta written in ${phasesLine(result.phases, (Date.now() - t0) / 1000)}`);
  ctx.store.write(`transaction ${tx.id}: slot ${tx.targetSlot} written by delta`, (w) => {
    w.progress(tx, { bytesRead: d.src.stats.bytes, slotDigest: JSON.stringify(result.digest) });
  });
  const phasesMs = Object.fromEntries(Object.entries(result.phases).map(([k, v]) => [k, Math.round(v)]));
  return { outcome: 'written', details: { ...result.stats, delta: true, digest: result.digest, phasesMs } };
}
