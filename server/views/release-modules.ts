/**
 * Releases as the console shows them: the columns of the releases table plus what the signed
 * manifest says of each payload (type, size, module version, target, compression, and the size
 * of its chunk index when the bundle is delta-capable), and how many rollouts used it.
 */
import type { Db } from '../db/open.js';
import type { ReleaseView } from '../db/releases.js';

/** One payload of a release. */
export interface ModuleView {
  name: string;
  type: string;
  size: number;
  version?: string;
  target?: string;
  compression?: string;
  unpackedSize?: number;
  /** Bytes of the chunk index a delta-capable image carries (manifest format 2). */
  chunkIndexSize?: number;
}

/** A release with its modules. */
export interface ReleaseModulesView extends ReleaseView {
  format: number;
  notes: string | null;
  modules: ModuleView[];
  rollouts: number;
}

interface Row {
  product: string;
  version: string;
  sha256: string;
  size: number;
  compatible: string;
  signer: string;
  created: string;
  uploaded: string;
  manifest: Buffer;
  channels: string | null;
  rollouts: number;
}

type RawModule = Record<string, unknown>;

function moduleView(m: RawModule): ModuleView {
  const out: ModuleView = { name: String(m.name), type: String(m.type), size: Number(m.size) };
  if (typeof m.version === 'string') out.version = m.version;
  if (typeof m.target === 'string') out.target = m.target;
  if (typeof m.compression === 'string') out.compression = m.compression;
  if (typeof m.unpackedSize === 'number') out.unpackedSize = m.unpackedSize;
  const index = m.index as { size?: unknown } | undefined;
  if (index && typeof index.size === 'number') out.chunkIndexSize = index.size;
  return out;
}

/** Every release (of `product`, or all), newest upload first. */
export function releaseModules(db: Db, product: string | null): ReleaseModulesView[] {
  const rows = db
    .prepare(
      `SELECT r.product, r.version, r.sha256, r.size, r.compatible, r.signer, r.created, r.uploaded, r.manifest,
        (SELECT group_concat(c.name, char(10)) FROM channels c WHERE c.product = r.product AND c.version = r.version) AS channels,
        (SELECT count(*) FROM rollouts o WHERE o.product = r.product AND o.version = r.version) AS rollouts
       FROM releases r WHERE ? IS NULL OR r.product = ? ORDER BY r.uploaded DESC, r.product, r.version`,
    )
    .all(product, product) as Row[];
  return rows.map((r) => {
    // The manifest was verified at upload; it is read loosely here so a newer format's fields pass.
    const m = JSON.parse(r.manifest.toString('utf8')) as { format?: number; notes?: string; modules?: RawModule[] };
    return {
      product: r.product,
      version: r.version,
      sha256: r.sha256,
      size: r.size,
      compatible: JSON.parse(r.compatible) as string[],
      signer: r.signer,
      created: r.created,
      uploaded: r.uploaded,
      channels: r.channels ? r.channels.split('\n').sort() : [],
      format: typeof m.format === 'number' ? m.format : 1,
      notes: typeof m.notes === 'string' ? m.notes : null,
      modules: (m.modules ?? []).map(moduleView),
      rollouts: r.rollouts,
    };
  });
}
