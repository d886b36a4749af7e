/** Real bundles for agent tests, built with shared/bundle-writer.ts. */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBundle, type BuildResult } from '../../../shared/bundle-writer.js';
import type { TestKey } from './keys.js';

/** The compatible string test devices use. */
export const COMPATIBLE = 'sim-gw';

/** Options for one test bundle. */
export interface BundleOptions {
  version: string;
  compatible?: string[];
  gzip?: boolean;
}

/** A bundle holding one raw image whose bytes are `image`. */
export async function imageBundle(dir: string, key: TestKey, image: Buffer, opts: BundleOptions): Promise<{ path: string; result: BuildResult }> {
  const work = await mkdtemp(join(dir, 'img-'));
  const imagePath = join(work, 'rootfs.img');
  await writeFile(imagePath, image);
  const path = join(dir, `image-${opts.version}${opts.gzip ? '-gz' : ''}-${Date.now()}-${Math.random().toString(16).slice(2)}.otab`);
  const result = await buildBundle({
    product: 'gateway',
    version: opts.version,
    compatible: opts.compatible ?? [COMPATIBLE],
    payloads: [{ name: 'rootfs', type: 'image', path: imagePath, ...(opts.gzip ? { gzip: true } : {}) }],
    key: key.key,
    out: path,
  });
  return { path, result };
}

/** A bundle holding one payload of a directory tree (archive or module). */
export async function treeBundle(
  dir: string,
  key: TestKey,
  tree: string,
  opts: BundleOptions & { type: 'archive' | 'module'; target?: string },
): Promise<{ path: string; result: BuildResult }> {
  const path = join(dir, `${opts.type}-${opts.version}-${Date.now()}-${Math.random().toString(16).slice(2)}.otab`);
  const result = await buildBundle({
    product: 'gateway',
    version: opts.version,
    compatible: opts.compatible ?? [COMPATIBLE],
    payloads: [{ name: opts.type === 'archive' ? 'rootfs' : 'app', type: opts.type, path: tree, ...(opts.target ? { target: opts.target, version: opts.version } : {}) }],
    key: key.key,
    out: path,
  });
  return { path, result };
}

/** Writes `files` (relative path → content) under `root`, creating directories. */
export async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<string> {
  for (const [rel, content] of Object.entries(files)) {
    const abs = join(root, rel);
    await mkdir(join(abs, '..'), { recursive: true });
    await writeFile(abs, content);
  }
  return root;
}

/** Deterministic pseudo-random bytes (so images differ by version and compress poorly). */
export function pseudoRandom(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
