/** Images and indexed bundles for delta tests. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBundle } from '../../shared/bundle-writer.js';
import { COMPATIBLE, pseudoRandom } from '../agent/helpers/bundles.js';
import type { TestKey } from '../agent/helpers/keys.js';

/** A healthy release image of `size` bytes: HEALTHY header, then seeded pseudo-random bytes. */
export function deltaImage(version: string, size: number, seed = 7): Buffer {
  const img = pseudoRandom(size, seed);
  Buffer.from(`HEALTHY ${version}\n`).copy(img, 0);
  return img;
}

/** `base` with the header of `version` and `regions` [offset, length] replaced by other bytes. */
export function edited(base: Buffer, version: string, regions: [number, number][], seed = 99): Buffer {
  const img = Buffer.from(base);
  Buffer.alloc(32).copy(img, 0);
  Buffer.from(`HEALTHY ${version}\n`).copy(img, 0);
  for (const [at, len] of regions) pseudoRandom(len, seed + at).copy(img, at);
  return img;
}

/** An indexed (format 2) bundle of one image; gzip by default. */
export async function indexedBundle(dir: string, key: TestKey, version: string, image: Buffer, gzip = true): Promise<string> {
  const work = await mkdtemp(join(dir, 'img-'));
  await writeFile(join(work, 'rootfs.img'), image);
  const out = join(dir, `delta-${version}-${gzip ? 'gz' : 'raw'}.otab`);
  await buildBundle({
    product: 'gateway',
    version,
    compatible: [COMPATIBLE],
    payloads: [{ name: 'rootfs', type: 'image', path: join(work, 'rootfs.img'), gzip }],
    key: key.key,
    out,
    index: {},
  });
  return out;
}
