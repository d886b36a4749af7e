/**
 * Debian kernels (any architecture) and a static busybox for the U-Boot and watchdog boot
 * scenarios, fetched once with `apt-get download` and cached: the kernel image plus the
 * watchdog modules the hang scenarios load. arm64 packages need the arm64 architecture in
 * dpkg (`dpkg --add-architecture arm64 && apt-get update`); nothing is installed.
 */
import { copyFile, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { tool } from '../sim/tools.js';

/** A kernel flavour: its meta-package and the modules the scenarios insmod, in load order. */
export interface KernelFlavour {
  /** e.g. `linux-image-arm64:arm64` (depends on the versioned package). */
  meta: string;
  /** dpkg architecture of the package. */
  arch: 'amd64' | 'arm64';
  /** Module file names (`i6300esb.ko`), found anywhere under /lib/modules. */
  modules: readonly string[];
}

/** The generic arm64 kernel: i6300esb is a module (watchdog core is built in). */
export const ARM64_GENERIC: KernelFlavour = { meta: 'linux-image-arm64:arm64', arch: 'arm64', modules: ['i6300esb.ko'] };
/** The generic amd64 kernel: i6300esb needs watchdog.ko first (the cloud kernel has neither). */
export const AMD64_GENERIC: KernelFlavour = { meta: 'linux-image-amd64', arch: 'amd64', modules: ['watchdog.ko', 'i6300esb.ko'] };

/** A cached kernel: the image and its modules. */
export interface CachedKernel {
  image: string;
  modules: string[];
}

async function download(pkg: string, work: string): Promise<string> {
  await execa(tool('apt-get'), ['download', pkg], { cwd: work, stdin: 'ignore' });
  const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb in ${work}`);
  return join(work, deb);
}

async function versioned(meta: string): Promise<string> {
  const r = await execa(tool('apt-cache'), ['depends', meta], { stdin: 'ignore', reject: false });
  const m = /Depends:\s+(linux-image-\S+)\s*$/m.exec(r.stdout);
  if (!m?.[1]) {
    const arm = meta.endsWith(':arm64') ? ' (for arm64: dpkg --add-architecture arm64 && apt-get update)' : '';
    throw new Error(`apt-cache found no kernel behind ${meta}: run apt-get update${arm}`);
  }
  const arch = meta.includes(':') ? meta.slice(meta.indexOf(':')) : '';
  return m[1].includes(':') ? m[1] : `${m[1]}${arch}`;
}

/** The kernel of `flavour`, from `cacheDir/<arch>-generic/` or downloaded into it. */
export async function ensureDebKernel(cacheDir: string, flavour: KernelFlavour, log: (s: string) => void = () => {}): Promise<CachedKernel> {
  const dir = join(cacheDir, `${flavour.arch}-generic`);
  const done = join(dir, 'complete');
  const result = async (): Promise<CachedKernel> => {
    const image = (await readdir(dir)).find((f) => f.startsWith('vmlinuz-'));
    if (!image) throw new Error(`${dir} holds no vmlinuz-*: delete it to download again`);
    return { image: join(dir, image), modules: flavour.modules.map((m) => join(dir, m)) };
  };
  if (existsSync(done)) return result();
  const pkg = await versioned(flavour.meta);
  log(`downloading ${pkg} with apt-get download (cached in ${dir})`);
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, 'download-'));
  try {
    const deb = await download(pkg, work);
    const tree = join(work, 'tree');
    await mkdir(tree);
    await execa(tool('dpkg-deb'), ['--fsys-tarfile', deb], { stdin: 'ignore', buffer: false })
      .pipe(tool('tar'), ['-x', '-C', tree, '--wildcards', './boot/vmlinuz-*', ...flavour.modules.map((m) => `*/${m}`)]);
    const stage = join(work, 'stage');
    await mkdir(stage);
    const image = (await readdir(join(tree, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (!image) throw new Error(`${pkg} holds no boot/vmlinuz-*`);
    await rename(join(tree, 'boot', image), join(stage, image));
    const found = await execa(tool('find'), [tree, '-name', '*.ko'], { stdin: 'ignore' });
    for (const m of flavour.modules) {
      const path = found.stdout.split('\n').find((p) => p.endsWith(`/${m}`));
      if (!path) throw new Error(`${pkg} holds no ${m}`);
      await copyFile(path, join(stage, m));
    }
    await execa(tool('touch'), [join(stage, 'complete')], { stdin: 'ignore' });
    // Rename last: an interrupted download never leaves a partial cache.
    await rm(dir, { recursive: true, force: true });
    await rename(stage, dir);
    return await result();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A static arm64 busybox (busybox-static:arm64), cached as `cacheDir/busybox-arm64`. */
export async function ensureArm64Busybox(cacheDir: string, log: (s: string) => void = () => {}): Promise<string> {
  const out = join(cacheDir, 'busybox-arm64');
  if (existsSync(out)) return out;
  log(`downloading busybox-static:arm64 with apt-get download (cached in ${cacheDir})`);
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, 'download-'));
  try {
    const deb = await download('busybox-static:arm64', work);
    await execa(tool('dpkg-deb'), ['-x', deb, join(work, 'x')], { stdin: 'ignore' });
    await rename(join(work, 'x', 'bin', 'busybox'), out);
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
