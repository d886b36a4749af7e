/**
 * Whether and how an install goes by delta: the bundle is indexed (format 2), the target is a
 * raw slot, the running slot has chunks of the new image. The head (manifest, signature, index)
 * is read with range requests and verified; the caller then either hands the transaction to the
 * delta writer or, when a delta does not pay, to the ordinary full download.
 */
import { resolve } from 'node:path';
import { OtaError, isOtaError } from '../../shared/errors.js';
import { parseManifest } from '../../shared/manifest.js';
import type { BundleReader } from '../../shared/bundle-reader.js';
import { readBundleHead, type BundleHead } from '../../shared/delta/head.js';
import { localChunks, planDelta } from '../../shared/delta/plan.js';
import { FileRangeReader, type RangeReader } from '../../shared/delta/range.js';
import type { Keyring } from '../../shared/signing.js';
import { isUrl, type HttpDownload } from '../infra/bundle-source.js';
import type { AgentConfig, SlotConfig } from '../config/types.js';
import { HttpRangeReader } from './http-range.js';
import { runningSlotIndex } from './slot-index.js';

/** A delta install ready to run. */
export interface DeltaStart {
  readonly head: BundleHead & { readonly image: NonNullable<BundleHead['image']> };
  /** For each chunk of the new index, its offset in the running slot or -1 (the first plan's). */
  readonly have: Float64Array;
  readonly src: RangeReader;
  /** Bytes the head took, and the whole delta is planned to take (fresh start). */
  readonly headBytes: number;
  readonly plannedBytes: number;
}

/** What deciding needs. */
export interface DeltaQuery {
  readonly config: AgentConfig;
  readonly target: SlotConfig;
  readonly active: SlotConfig;
  readonly source: string;
  readonly http: HttpDownload;
  readonly keyring: Keyring;
  readonly size?: number;
  readonly log: (line: string) => void;
  /** The manifest announced for the bundle (a server directive, a transaction): no index in it, no head request. */
  readonly manifest?: Buffer | null;
  /** Refuses the bundle (policy) once its head is verified, before the running slot is read. */
  readonly vet?: (reader: BundleReader, name: string) => Promise<void>;
}

/** The range reader for a bundle path or URL. */
export function rangeReader(source: string, http: HttpDownload): RangeReader {
  return isUrl(source) ? new HttpRangeReader(source, http) : new FileRangeReader(resolve(source));
}

/** True when an announced manifest has an indexed image (unparseable: let the head read decide). */
function announcesIndex(bytes: Buffer): boolean {
  try {
    return parseManifest(bytes).modules.some((m) => m.type === 'image' && m.index !== undefined);
  } catch {
    return true;
  }
}

/** Reads the head and plans; undefined when this install goes the full way. */
export async function prepareDelta(q: DeltaQuery): Promise<DeltaStart | undefined> {
  if (!q.config.delta.enabled || q.target.kind !== 'raw' || q.active.kind !== 'raw') return undefined;
  if (q.manifest && !announcesIndex(q.manifest)) return undefined;
  const src = rangeReader(q.source, q.http);
  let ready: DeltaStart | undefined;
  try {
    ready = await planned(q, src);
    return ready;
  } finally {
    // A kept connection (HTTP) goes with the reader unless the delta goes ahead with it.
    if (!ready) src.close?.();
  }
}

/** The head read through `src`, and the plan; undefined when this install goes the full way. */
async function planned(q: DeltaQuery, src: RangeReader): Promise<DeltaStart | undefined> {
  let head: BundleHead;
  try {
    head = await readBundleHead(src, q.keyring, q.size);
  } catch (err) {
    // An origin that ignores Range can still serve the whole bundle: say so, and download it.
    if (!isOtaError(err, 'DELTA_RANGE_NOT_PARTIAL')) throw err;
    q.log(`delta: ${q.source} does not serve byte ranges; downloading it whole`);
    return undefined;
  }
  await q.vet?.(head.reader, src.name);
  if (!head.image) {
    q.log(`delta: bundle ${q.source} has no chunk index; downloading it whole`);
    return undefined;
  }
  const headBytes = src.stats.bytes;
  const own = await runningSlotIndex(q.config.dataDir, q.active, q.log, head.image.index.params);
  if (!own) return undefined;
  const have = localChunks(own);
  const plan = planDelta(head.image.index, have, head.image.dataOffset, q.config.delta);
  if (plan.localBytes === 0) {
    q.log(`delta: slot ${q.active.name} has no chunk of the new image; downloading it whole`);
    return undefined;
  }
  q.log(
    `delta: ${plan.localBytes} of ${head.image.index.imageSize} image bytes from slot ${q.active.name}, ` +
      `${plan.wireBytes} bundle bytes in ${plan.ranges.length} range request(s)`,
  );
  // The slot's index and table go with this frame: the plan's array says the same in 8 bytes a chunk.
  return { head: head as DeltaStart['head'], have: plan.localOffset, src, headBytes, plannedBytes: headBytes + plan.wireBytes };
}

/** The head's manifest must be the one the transaction started with. */
export function checkSameManifest(d: DeltaStart, manifest: Buffer | null, txId: string): void {
  if (manifest && !d.head.reader.bundle.manifestBytes.equals(manifest)) {
    throw new OtaError('BUNDLE_CHANGED', `bundle ${d.src.name}: its manifest is not the one transaction ${txId} started with`);
  }
}
