import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { tool } from '../sim/tools.js';

/** The Debian meta-package that always depends on the current cloud kernel. */
export const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';

/** Picks the versioned kernel package out of `apt-cache depends` output, or null. */
export function kernelPackageFrom(dependsOutput: string): string | null {
  const m = /Depends:\s+(linux-image-\S+-cloud-amd64)\s*$/m.exec(dependsOutput);
  return m?.[1] ?? null;
}

async function cachedKernel(cacheDir: string): Promise<string | null> {
  if (!existsSync(cacheDir)) return null;
  const kernels = (await readdir(cacheDir)).filter((f) => /^vmlinuz-.+-cloud-amd64$/.test(f)).sort();
  const newest = kernels.at(-1);
  return newest ? join(cacheDir, newest) : null;
}

/**
 * Path of a Debian cloud kernel: OTAAB_KERNEL if set, else the one cached in `cacheDir`,
 * else downloaded with `apt-get download` (no root, no install) and cached there.
 * The cloud flavour boots in a few seconds under TCG; the generic one takes far longer.
 */
export async function ensureKernel(cacheDir: string, log: (s: string) => void = () => {}): Promise<string> {
  const override = process.env['OTAAB_KERNEL'];
  if (override) {
    if (!existsSync(override)) throw new Error(`OTAAB_KERNEL=${override} does not exist`);
    return override;
  }
  const cached = await cachedKernel(cacheDir);
  if (cached) return cached;

  const depends = await execa(tool('apt-cache'), ['depends', KERNEL_META_PACKAGE], { stdin: 'ignore', reject: false });
  const pkg = kernelPackageFrom(depends.stdout);
  if (!pkg) throw new Error(`apt-cache found no kernel behind ${KERNEL_META_PACKAGE}: run apt-get update, or set OTAAB_KERNEL to a vmlinuz`);
  log(`downloading ${pkg} with apt-get download (cached in ${cacheDir})`);
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, 'download-'));
  try {
    await execa(tool('apt-get'), ['download', pkg], { cwd: work, stdin: 'ignore' });
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb in ${work}`);
    // Not buffered: the tar stream (all modules) is larger than execa's maxBuffer.
    await execa(tool('dpkg-deb'), ['--fsys-tarfile', join(work, deb)], { stdin: 'ignore', buffer: false })
      .pipe(tool('tar'), ['-x', '-C', work, '--wildcards', './boot/vmlinuz-*']);
    const vmlinuz = (await readdir(join(work, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`${deb} holds no boot/vmlinuz-*`);
    // Rename last: an interrupted download never leaves a partial kernel in the cache.
    await rename(join(work, 'boot', vmlinuz), join(cacheDir, vmlinuz));
    return join(cacheDir, vmlinuz);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
