import { chmod, copyFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { tool } from '../sim/tools.js';

/** Where Debian's busybox-static puts its binary. */
export const BUSYBOX = '/bin/busybox';

/** How a slot's userspace behaves once its kernel has started. */
export type InitBehaviour = 'good' | 'panic';

/**
 * The /init of a test slot. A good one prints which slot's initrd it is and the kernel
 * command line, then powers off (qemu exits). A broken one exits: PID 1 dying makes the
 * kernel panic, and panic=1 reboots into GRUB again.
 */
export function initScript(slot: 'A' | 'B', behaviour: InitBehaviour): string {
  if (behaviour === 'panic') {
    return `#!/bin/busybox sh
echo "OTA-INIT: slot ${slot} userspace is broken, init exits"
exit 1
`;
  }
  return `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "OTA-INIT: slot ${slot} userspace is up"
echo "OTA-CMDLINE: $(/bin/busybox cat /proc/cmdline)"
/bin/busybox poweroff -f
`;
}

// A dynamically linked busybox would find no libc in the initramfs and every slot would
// panic: check for a PT_INTERP program header before building anything.
async function isStaticElf(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(64);
    await handle.read(header, 0, 64, 0);
    if (header.toString('latin1', 0, 4) !== '\x7fELF' || header[4] !== 2) return false;
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    await handle.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (table.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    }
    return true;
  } finally {
    await handle.close();
  }
}

/** Builds a gzip'd newc initramfs holding a static busybox and the given /init at `out`. */
export async function buildInitramfs(out: string, init: string): Promise<void> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} not found: install the Debian package busybox-static`);
  if (!(await isStaticElf(BUSYBOX))) throw new Error(`${BUSYBOX} is dynamically linked: install busybox-static instead of busybox`);
  const stage = await mkdtemp(join(tmpdir(), 'otaab-initramfs-'));
  try {
    for (const dir of ['bin', 'proc', 'dev', 'sys']) await mkdir(join(stage, dir));
    await copyFile(BUSYBOX, join(stage, 'bin', 'busybox'));
    await writeFile(join(stage, 'init'), init);
    await chmod(join(stage, 'init'), 0o755);
    // The kernel's built-in initramfs already has /dev/console, so no device node (and
    // no root) is needed; -R 0:0 makes the archive independent of who builds it.
    const { stdout } = await execa(tool('cpio'), ['-o', '-H', 'newc', '-R', '0:0', '--quiet'], {
      cwd: stage,
      input: ['.', 'bin', 'bin/busybox', 'proc', 'dev', 'sys', 'init'].join('\n') + '\n',
      encoding: 'buffer',
    });
    await writeFile(out, gzipSync(stdout, { level: 6 }));
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
