/**
 * A BIOS disk image for the qemu boot test, built without root or mounts: an MBR from
 * sfdisk, GRUB's boot.img and core.img in the gap before the first partition, a FAT16 boot
 * partition (mtools) with grub.cfg, ota-select.cfg and grubenv, and two ext4 slots
 * (mkfs.ext4 -d), each carrying its own kernel and initrd at /boot.
 */
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { tool } from '../sim/tools.js';
import { readEnv, writeEnv } from '../sim/grubenv.js';

const MiB = 1 << 20;

/** Byte offsets and sizes of the three partitions. */
export interface DiskLayout {
  /** Partition 1: FAT16 boot partition, GRUB's prefix `(hd0,msdos1)/grub`. */
  boot: { offset: number; size: number };
  /** Partition 2: slot A. */
  A: { offset: number; size: number };
  /** Partition 3: slot B. */
  B: { offset: number; size: number };
  /** Whole image size. */
  total: number;
}

/** Lays out the disk for slots of `slotSize` bytes (rounded up to whole MiB). */
export function diskLayout(slotSize: number): DiskLayout {
  const slot = Math.ceil(slotSize / MiB) * MiB;
  const boot = { offset: 1 * MiB, size: 8 * MiB };
  const A = { offset: boot.offset + boot.size, size: slot };
  const B = { offset: A.offset + slot, size: slot };
  return { boot, A, B, total: B.offset + slot + MiB };
}

/** GRUB's BIOS modules directory (Debian package grub-pc-bin). */
export const I386_PC = '/usr/lib/grub/i386-pc';

// Everything grub.cfg and ota-select.cfg use, built into core.img: the FAT partition then
// needs no module directory, and nothing is loaded from a disk GRUB may fail to read.
const CORE_MODULES = [
  'biosdisk', 'part_msdos', 'part_gpt', 'fat', 'ext2', 'normal', 'configfile', 'linux',
  'echo', 'test', 'loadenv', 'serial', 'terminal', 'reboot', 'sleep',
];

/** Builds GRUB's i386-pc core.img with the boot partition as its prefix. */
export async function buildCoreImage(out: string): Promise<void> {
  await execa(tool('grub-mkimage'), ['-O', 'i386-pc', '-d', I386_PC, '-o', out, '-p', '(hd0,msdos1)/grub', ...CORE_MODULES], { stdin: 'ignore' });
}

/** Builds an ext4 slot image of `size` bytes from a directory tree. */
export async function buildSlotImage(out: string, tree: string, size: number): Promise<void> {
  await execa(tool('mkfs.ext4'), ['-q', '-F', '-d', tree, out, `${Math.floor(size / 1024)}k`], { stdin: 'ignore' });
}

/** Files for the boot partition's `grub/` folder: name → host path. */
export type BootFiles = Record<string, string>;

const mtoolsEnv = { MTOOLS_SKIP_CHECK: '1' };

/** Builds the FAT16 boot partition image holding `grub/<name>` for each of `files`. */
export async function buildBootPartition(out: string, size: number, files: BootFiles): Promise<void> {
  // mkfs.fat -C creates the file itself; 8 MiB of FAT16 needs 2 sectors per cluster.
  await rm(out, { force: true });
  await execa(tool('mkfs.fat'), ['-C', '-F', '16', '-s', '2', '-n', 'OTABOOT', out, String(size / 1024)], { stdin: 'ignore' });
  await execa(tool('mmd'), ['-i', out, '::/grub'], { stdin: 'ignore', env: mtoolsEnv });
  for (const [name, path] of Object.entries(files)) {
    await execa(tool('mcopy'), ['-i', out, path, `::/grub/${name}`], { stdin: 'ignore', env: mtoolsEnv });
  }
}

/** Copies the file `src` into `dest` at byte `offset`, without truncating `dest`. */
export async function writeAt(dest: string, offset: number, src: string): Promise<void> {
  const out = await open(dest, 'r+');
  const input = await open(src, 'r');
  try {
    const buf = Buffer.alloc(MiB);
    for (let pos = 0; ; ) {
      const { bytesRead } = await input.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      await out.write(buf, 0, bytesRead, offset + pos);
      pos += bytesRead;
    }
  } finally {
    await input.close();
    await out.close();
  }
}

/** Assembles the disk: partition table, boot.img (440 bytes), core.img at sector 1, partitions. */
export async function assembleDisk(out: string, layout: DiskLayout, parts: { coreImg: string; boot: string; A: string; B: string }): Promise<void> {
  const core = (await stat(parts.coreImg)).size;
  if (512 + core > layout.boot.offset) throw new Error(`core.img (${core} bytes) does not fit before the first partition`);
  await writeFile(out, '');
  const handle = await open(out, 'r+');
  await handle.truncate(layout.total);
  await handle.close();
  const sectors = (p: { offset: number; size: number }) => `start=${p.offset / 512}, size=${p.size / 512}`;
  await execa(tool('sfdisk'), ['-q', out], {
    input: `label: dos\n${sectors(layout.boot)}, type=6, bootable\n${sectors(layout.A)}, type=83\n${sectors(layout.B)}, type=83\n`,
  });
  // Only the first 440 bytes of boot.img: the rest of sector 0 is sfdisk's partition table.
  const bootImg = (await readFile(join(I386_PC, 'boot.img'))).subarray(0, 440);
  const handle2 = await open(out, 'r+');
  try {
    await handle2.write(bootImg, 0, bootImg.length, 0);
  } finally {
    await handle2.close();
  }
  await writeAt(out, 512, parts.coreImg);
  await writeAt(out, layout.boot.offset, parts.boot);
  await writeAt(out, layout.A.offset, parts.A);
  await writeAt(out, layout.B.offset, parts.B);
}

/** mtools' name for the boot partition of `disk`. */
function fatImage(disk: string, layout: DiskLayout): string {
  return `${disk}@@${layout.boot.offset}`;
}

/** Copies `grub/grubenv` out of the disk's boot partition to `out` (mcopy, no mount). */
export async function copyEnvOut(disk: string, layout: DiskLayout, out: string): Promise<void> {
  await rm(out, { force: true });
  await execa(tool('mcopy'), ['-i', fatImage(disk, layout), '::/grub/grubenv', out], { stdin: 'ignore', env: mtoolsEnv });
}

/** Reads the grubenv GRUB left on the disk image. */
export async function readDiskEnv(disk: string, layout: DiskLayout, scratch: string): Promise<Record<string, string>> {
  await mkdir(scratch, { recursive: true });
  const dir = await mkdtemp(join(scratch, 'env-'));
  try {
    const path = join(dir, 'grubenv');
    await copyEnvOut(disk, layout, path);
    return await readEnv(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Edits the disk's grubenv the way the agent does on a device: take the file, change it
 * with grub-editenv, put it back (mcopy -o rewrites it in place in the FAT).
 */
export async function editDiskEnv(disk: string, layout: DiskLayout, scratch: string, vars: Record<string, string>): Promise<void> {
  await mkdir(scratch, { recursive: true });
  const dir = await mkdtemp(join(scratch, 'env-'));
  try {
    const path = join(dir, 'grubenv');
    await copyEnvOut(disk, layout, path);
    await writeEnv(path, vars);
    await execa(tool('mcopy'), ['-o', '-i', fatImage(disk, layout), path, '::/grub/grubenv'], { stdin: 'ignore', env: mtoolsEnv });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
