import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

// Debian keeps mkfs.ext4, debugfs, sfdisk and mkfs.fat in /usr/sbin, which is not on a
// normal user's PATH; the tools work without root, so look there too.
const EXTRA_DIRS = ['/usr/sbin', '/sbin'];

/** The Debian package that provides each external tool the simulator and qemu test run. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  'grub-emu': 'grub-emu',
  'grub-editenv': 'grub-common',
  'grub-mkimage': 'grub-common',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  'qemu-system-x86_64': 'qemu-system-x86',
  'mkfs.fat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  sfdisk: 'fdisk',
  cpio: 'cpio',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  tar: 'tar',
  // uboot
  'qemu-system-aarch64': 'qemu-system-arm',
  mkimage: 'u-boot-tools',
  mkenvimage: 'u-boot-tools',
  fw_printenv: 'libubootenv-tool',
  fw_setenv: 'libubootenv-tool',
  mtype: 'mtools',
  find: 'findutils',
  touch: 'coreutils',
  dd: 'coreutils',
});

const cache = new Map<string, string>();

/** Absolute path of an external tool, or an error naming the Debian package to install. */
export function tool(name: string): string {
  const hit = cache.get(name);
  if (hit) return hit;
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      cache.set(name, path);
      return path;
    } catch {
      // not in this directory
    }
  }
  const pkg = TOOL_PACKAGES[name];
  throw new Error(`${name} not found on PATH or in /usr/sbin${pkg ? `: install the Debian package ${pkg}` : ''}`);
}
