/**
 * The bundle a downloading handler reads: the one this process opened (a fresh install), or,
 * after a restart, the source opened again. When the transaction recorded a durable resume
 * point, reading continues from there (HTTP Range or a file offset) with the payload's first
 * bytes read back from the slot, so the payload hash still covers every byte.
 */
import { createReadStream } from 'node:fs';
import { BundleReader } from '../../../shared/bundle-reader.js';
import { OtaError } from '../../../shared/errors.js';
import { CHUNK } from '../../../shared/hashing.js';
import { loadKeyring } from '../../../shared/signing.js';
import { openSource, type HttpDownload } from '../../infra/bundle-source.js';
import { DownloadRetries } from '../../download/settings.js';
import type { SlotConfig } from '../../config/types.js';
import type { Transaction } from '../../store/types.js';
import type { LiveBundle, MachineContext } from '../context.js';

/** The first `length` bytes of a raw slot, as the resumed payload's prefix. */
async function* slotPrefix(path: string, length: number): AsyncGenerator<Buffer> {
  if (length === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: length - 1, highWaterMark: CHUNK })) yield chunk as Buffer;
}

/** HTTP options for re-opening `tx`'s source: its announced bundle, its remaining retries, the device token. */
function httpFor(ctx: MachineContext, tx: Transaction, url: string): HttpDownload {
  const retries = new DownloadRetries(ctx.store, ctx.booted, ctx.log, ctx.download.retries, tx.id);
  return retries.http(ctx.download, url, { sha256: tx.bundleSha256, size: tx.bundleSize }, ctx.signal);
}

async function resumed(ctx: MachineContext, tx: Transaction, target: SlotConfig): Promise<LiveBundle | undefined> {
  if (tx.resumeIndex === null || tx.resumeDataOffset === null || tx.payloadsOffset === null || tx.durableOffset <= 0) return undefined;
  if (target.kind !== 'raw' || !tx.manifest || !tx.manifestSig || !tx.source) return undefined;
  const from = tx.resumeDataOffset + tx.durableOffset;
  const remaining = tx.bundleSize !== null ? tx.bundleSize - from : undefined;
  const src = await openSource(tx.source, { offset: from, ...(remaining !== undefined ? { maxBytes: remaining } : {}), http: httpFor(ctx, tx, tx.source) });
  const reader = await BundleReader.resume(
    src.chunks,
    { keyring: await loadKeyring(ctx.config.trustedKeys), source: src.name },
    { manifestBytes: tx.manifest, signature: tx.manifestSig, payloadsOffset: tx.payloadsOffset },
    { index: tx.resumeIndex, dataOffset: tx.resumeDataOffset, offset: tx.durableOffset },
    slotPrefix(target.path, tx.durableOffset),
  );
  ctx.log(`transaction ${tx.id}: resuming the download at byte ${from} (${tx.durableOffset} bytes of payload ${tx.resumeIndex} already in slot ${target.name})`);
  return { reader, bytesRead: () => from + src.bytesRead() };
}

/** The bundle to read for `tx`, from where its durable progress allows. */
export async function bundleFor(ctx: MachineContext, tx: Transaction, target: SlotConfig): Promise<LiveBundle> {
  if (ctx.live) return ctx.live;
  if (!tx.source || !tx.manifest) throw new OtaError('BUNDLE_CHANGED', `transaction ${tx.id}: no bundle source was recorded`);
  const again = await resumed(ctx, tx, target);
  if (again) return again;
  const src = await openSource(tx.source, { ...(tx.bundleSize !== null ? { maxBytes: tx.bundleSize } : {}), http: httpFor(ctx, tx, tx.source) });
  const reader = await BundleReader.open(src.chunks, { keyring: await loadKeyring(ctx.config.trustedKeys), source: src.name });
  if (!reader.bundle.manifestBytes.equals(tx.manifest)) {
    throw new OtaError('BUNDLE_CHANGED', `bundle ${src.name}: its manifest is not the one transaction ${tx.id} started with (version ${reader.manifest.version})`);
  }
  return { reader, bytesRead: src.bytesRead };
}
