/**
 * initramfs images for any architecture: a given static busybox, a given /init and extra
 * files (kernel modules) at the root; and the /init of a slot that arms the watchdog and
 * then hangs, for the hang scenarios.
 */
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { tool } from '../sim/tools.js';

/** Builds a gzip'd newc initramfs: /bin/busybox, /init, and each of `files` at the root. */
export async function buildInitramfsWith(out: string, busybox: string, init: string, files: readonly string[] = []): Promise<void> {
  const stage = await mkdtemp(join(tmpdir(), 'otaab-initramfs-'));
  try {
    for (const dir of ['bin', 'proc', 'dev', 'sys']) await mkdir(join(stage, dir));
    await copyFile(busybox, join(stage, 'bin', 'busybox'));
    await writeFile(join(stage, 'init'), init);
    await chmod(join(stage, 'init'), 0o755);
    for (const f of files) await copyFile(f, join(stage, basename(f)));
    const { stdout } = await execa(tool('cpio'), ['-o', '-H', 'newc', '-R', '0:0', '--quiet'], {
      cwd: stage,
      input: ['.', 'bin', 'bin/busybox', 'proc', 'dev', 'sys', 'init', ...files.map((f) => basename(f))].join('\n') + '\n',
      encoding: 'buffer',
    });
    await writeFile(out, gzipSync(stdout, { level: 6 }));
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/**
 * The /init of a slot whose userspace hangs after arming the watchdog: it loads the modules
 * (in order, e.g. watchdog.ko then i6300esb.ko with a 5 s heartbeat), opens /dev/watchdog,
 * never pets it and sleeps. Only the watchdog's reset ends the boot.
 */
export function hangInitScript(slot: 'A' | 'B', modules: readonly string[]): string {
  const loads = modules.map((m) => `/bin/busybox insmod /${basename(m)}${basename(m) === 'i6300esb.ko' ? ' heartbeat=5' : ''}`).join('\n');
  return `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
${loads}
echo "OTA-INIT: slot ${slot} armed the watchdog and hangs"
exec 3>/dev/watchdog
while :; do /bin/busybox sleep 3600; done
`;
}
