/** The delta parts of the downloading and committed handlers, kept out of the handlers themselves. */
import { errorMessage } from '../../shared/errors.js';
import { loadKeyring } from '../../shared/signing.js';
import type { SlotConfig } from '../config/types.js';
import { DownloadRetries } from '../download/settings.js';
import type { LiveBundle, MachineContext } from '../machine/context.js';
import type { Transaction } from '../store/types.js';
import { keepSlotIndex, savePendingIndex } from './slot-index.js';
import { checkSameManifest, prepareDelta, type DeltaStart } from './start.js';

/**
 * The delta install for `tx`, if it goes by delta: the one install() prepared, or after a
 * restart the same decision made again (a transaction that began a full download stays full).
 */
export async function deltaFor(ctx: MachineContext, tx: Transaction, target: SlotConfig, active: SlotConfig): Promise<DeltaStart | undefined> {
  if (ctx.live) return ctx.live.delta;
  if (!tx.source || tx.kind !== 'install') return undefined;
  if (tx.step !== 'delta' && (tx.resumeIndex !== null || tx.durableOffset > 0)) return undefined;
  const retries = new DownloadRetries(ctx.store, ctx.booted, ctx.log, ctx.download.retries, tx.id);
  const d = await prepareDelta({
    config: ctx.config,
    target,
    active,
    source: tx.source,
    http: retries.http(ctx.download, tx.source, { sha256: tx.bundleSha256, size: tx.bundleSize }, ctx.signal),
    keyring: await loadKeyring(ctx.config.trustedKeys),
    ...(tx.bundleSize !== null ? { size: tx.bundleSize } : {}),
    log: ctx.log,
    manifest: tx.manifest,
  });
  if (d) checkSameManifest(d, tx.manifest, tx.id);
  return d;
}

/** A full download of an indexed image keeps its index too, for the next update. */
export async function keepIndexOf(ctx: MachineContext, tx: Transaction, bundle: LiveBundle): Promise<void> {
  const image = bundle.reader.manifest.modules.find((m) => m.type === 'image' && m.index);
  const packed = image && (await bundle.reader.indexes()).get(image.name);
  if (packed) await savePendingIndex(ctx.config.dataDir, tx.id, packed);
}

/** At commit the installed image's index becomes the slot's; a failure only costs a re-chunk later. */
export async function keepCommittedIndex(ctx: MachineContext, tx: Transaction): Promise<void> {
  await keepSlotIndex(ctx.config.dataDir, tx.id, tx.targetSlot).catch((err: unknown) => ctx.log(`delta: could not keep the index of slot ${tx.targetSlot} (${errorMessage(err)})`));
}
