/**
 * What a device running OLD downloads to install NEW by delta: the head requests (manifest,
 * signature, index) and the planned chunk ranges, computed by the agent's own code paths
 * against the bundle files. `ota-release delta-report` prints it.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { OtaError } from '../errors.js';
import { CHUNK } from '../hashing.js';
import { gunzipLimited } from '../inflate.js';
import { BundleReader } from '../bundle-reader.js';
import type { Keyring } from '../signing.js';
import type { ChunkIndex } from '../chunk-index.js';
import { readBundleHead } from './head.js';
import { indexOfStream } from './local-index.js';
import { sameChunking, type ChunkParams } from '../chunker.js';
import { localChunks, planDelta, type PlanOptions } from './plan.js';
import { FileRangeReader, type RangeReader } from './range.js';

/**
 * Where a report reads a bundle from: a local file (`ota-release delta-report`) or the server's
 * bundle store (the console's figures), by ranges for the head and whole for an old image that
 * must be chunked anew.
 */
export interface ReportBundle {
  readonly name: string;
  size(): Promise<number>;
  /** A new range reader, with its own request and byte counts. */
  ranges(): RangeReader;
  /** The whole bundle, from its first byte. */
  stream(): Promise<Readable>;
}

/** A bundle file as a report's source. */
export function fileBundle(path: string): ReportBundle {
  return {
    name: path,
    size: async () => (await stat(path)).size,
    ranges: () => new FileRangeReader(path),
    stream: async () => createReadStream(path, { highWaterMark: CHUNK }),
  };
}

const asBundle = (b: string | ReportBundle): ReportBundle => (typeof b === 'string' ? fileBundle(b) : b);

/** The report. */
export interface DeltaReport {
  /** Size of the NEW bundle: what a full install downloads. */
  readonly bundleBytes: number;
  /** Bytes a delta install downloads (head, indexes and chunk ranges). */
  readonly wireBytes: number;
  /** HTTP requests of a delta install. */
  readonly requests: number;
  readonly imageBytes: number;
  /** Image bytes taken from the running slot, and fetched. */
  readonly localBytes: number;
  readonly fetchedImageBytes: number;
  readonly chunks: number;
  readonly fetchedChunks: number;
  /** Bytes of the head (manifest, signature, indexes) among wireBytes. */
  readonly headBytes: number;
}

/**
 * The chunks of OLD's image cut with NEW's chunk sizes, as the device's kept index would be:
 * OLD's own index when its sizes are those, else (a format 1 bundle, other sizes) the image
 * chunked now.
 */
async function oldIndex(bundle: ReportBundle, keyring: Keyring, params: ChunkParams): Promise<ChunkIndex> {
  const path = bundle.name;
  const head = await readBundleHead(bundle.ranges(), keyring);
  if (head.image && sameChunking(head.image.index.params, params)) return head.image.index;
  const reader = await BundleReader.open(await bundle.stream(), { keyring, source: path });
  for await (const p of reader.payloads()) {
    if (p.module.type !== 'image') continue;
    const data = p.module.compression === 'gzip' ? gunzipLimited(p.chunks, p.module.unpackedSize ?? 0, `bundle ${path}`) : p.chunks;
    return indexOfStream(data, params);
  }
  throw new OtaError('MANIFEST_FIELD_VALUE', `bundle ${path}: it has no image payload to compare with`);
}

/** Computes the report for a device whose running slot holds OLD's image. */
export async function deltaReport(oldBundle: string | ReportBundle, newBundle: string | ReportBundle, keyring: Keyring, opts: PlanOptions = {}): Promise<DeltaReport> {
  const next = asBundle(newBundle);
  const newPath = next.name;
  const bundleBytes = await next.size();
  const src = next.ranges();
  const head = await readBundleHead(src, keyring, bundleBytes);
  if (!head.image) throw new OtaError('MANIFEST_FIELD_VALUE', `bundle ${newPath}: its image has no chunk index (built with --no-index?); a device downloads it whole`);
  const ix = head.image.index;
  const old = await oldIndex(asBundle(oldBundle), keyring, ix.params);
  const plan = planDelta(ix, localChunks(old), head.image.dataOffset, opts);
  const headBytes = src.stats.bytes;
  return {
    bundleBytes,
    wireBytes: headBytes + plan.wireBytes,
    requests: src.stats.requests + plan.ranges.length,
    imageBytes: ix.imageSize,
    localBytes: plan.localBytes,
    fetchedImageBytes: plan.fetchedImageBytes,
    chunks: ix.chunks.length,
    fetchedChunks: plan.localOffset.filter((x) => x < 0).length,
    headBytes,
  };
}
