/**
 * The device image of `npm run test:device`: a Debian 12 root file system made by debootstrap
 * from Debian's packages, set up by the shell block of docs/AGENT.md ("A whole Debian 12
 * device", between the `device-setup` markers) run in its chroot, and a BIOS disk with GRUB:
 *
 *   p1  FAT16 boot partition: grub/{grub.cfg, ota-select.cfg, ota-device.cfg, grubenv}
 *       (mounted at /boot/ota; the factory's device.env goes next to grub/)
 *   p2  slot A (ext4, the whole root file system with its kernel and initrd)
 *   p3  slot B (the same factory system)
 *   p4  data (ext4, mounted at /var/lib/otaab: the agent's store and enrollment)
 *
 * Everything is cached under .cache/device/, keyed by its inputs: the debootstrapped base by
 * the package list and mirror, the set-up root by the base, the .deb, the docs' block and this
 * file's own steps. Needs root (debootstrap, chroot).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { buildBootPartition, buildCoreImage } from '../qemu/disk.js';
import { createEnv } from '../sim/grubenv.js';
import { generateSigningKey } from '../../shared/signing.js';
import { REPO, aptMirror, sh } from './util.js';

const MiB = 1 << 20;
/** Where everything is cached. */
export const CACHE = join(REPO, '.cache', 'device');
const SUITE = 'bookworm';
/** Packages on top of minbase: init, devices, kernel, its initramfs, grub-editenv for the agent. */
export const PACKAGES = ['systemd-sysv', 'udev', 'kmod', 'linux-image-amd64', 'initramfs-tools', 'zstd', 'grub-common'];
const CHROOT_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' };

/**
 * The board's GRUB layout: virtio disk, slots on partitions 2 and 3, Debian's kernel links.
 * clocksource=hpet: under TCG on a loaded host the TSC calibrates wrong and the guest clock
 * falls behind the server's, which makes the agent refuse check-in answers signed "in the future".
 */
export const OTA_DEVICE_CFG = `# otaab qemu device: virtio disk, MBR, slots on partitions 2 and 3.
set ota_part_A=(hd0,msdos2)
set ota_part_B=(hd0,msdos3)
set ota_root_A=/dev/vda2
set ota_root_B=/dev/vda3
set ota_kernel=/vmlinuz
set ota_initrd=/initrd.img
set ota_cmdline="ro rootwait console=ttyS0,115200 panic=5 quiet systemd.show_status=1 clocksource=hpet"
`;

/** The board's mounts: the boot partition (grubenv, device.env), the data partition, tmpfs (the root stays read-only). */
const FSTAB = `/dev/vda1 /boot/ota vfat defaults,sync,x-systemd.device-timeout=15min 0 0
/dev/vda4 /var/lib/otaab ext4 defaults,x-systemd.device-timeout=15min 0 2
tmpfs /tmp tmpfs mode=1777 0 0
tmpfs /var/tmp tmpfs mode=1777 0 0
`;

/** The kernel module folders a virtio qemu machine needs; everything else is deleted. */
const KEEP_MODULES = ['kernel/fs/ext4', 'kernel/fs/jbd2', 'kernel/fs/mbcache.ko', 'kernel/fs/fat', 'kernel/fs/nls', 'kernel/lib', 'kernel/crypto', 'kernel/arch', 'kernel/drivers/block', 'kernel/drivers/virtio', 'kernel/drivers/watchdog', 'kernel/drivers/net/virtio_net.ko', 'kernel/drivers/net/net_failover.ko', 'kernel/net/core', 'kernel/drivers/char'];

/** The shell block of docs/AGENT.md between the device-setup markers. */
export function docsSetupBlock(): string {
  const text = readFileSync(join(REPO, 'docs', 'AGENT.md'), 'utf8');
  const m = /<!-- device-setup:begin -->\n```sh\n([\s\S]*?)```\n<!-- device-setup:end -->/.exec(text);
  if (!m?.[1]) throw new Error('docs/AGENT.md has no ```sh block between <!-- device-setup:begin --> and <!-- device-setup:end -->');
  return m[1];
}

function hash(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Runs `argv` in the chroot `dir` with a clean environment. */
export async function inRoot(dir: string, argv: string[], input?: string): Promise<string> {
  const r = await execa('chroot', [dir, ...argv], { reject: false, all: true, env: CHROOT_ENV, extendEnv: false, timeout: 1_800_000, ...(input === undefined ? { stdin: 'ignore' as const } : { input }) });
  if (r.exitCode !== 0) throw new Error(`chroot ${argv.join(' ')} failed (${r.exitCode ?? r.message}):\n${String(r.all ?? '').split('\n').slice(-30).join('\n')}`);
  return String(r.all ?? '');
}

/** A tarball of the debootstrapped base root, made once per package list and mirror. */
async function baseRoot(log: (m: string) => void): Promise<{ tar: string; key: string }> {
  const mirror = aptMirror();
  const key = hash(SUITE, mirror, PACKAGES.join(','));
  const tar = join(CACHE, `base-${key}.tar`);
  if (existsSync(tar)) return { tar, key };
  await mkdir(CACHE, { recursive: true });
  const dir = await mkdtemp(join(CACHE, 'debootstrap-'));
  try {
    const t0 = Date.now();
    log(`debootstrap ${SUITE} minbase + ${PACKAGES.join(' ')} from ${mirror} (once; cached)`);
    await sh('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, '--arch=amd64', SUITE, dir, mirror]);
    await inRoot(dir, ['apt-get', 'clean']);
    await sh('tar', ['--numeric-owner', '-cf', `${tar}.tmp`, '-C', dir, '.']);
    await rename(`${tar}.tmp`, tar);
    log(`debootstrap took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { tar, key };
}

/** The release key pair of the test devices, made once (a test key, never a real one). */
export async function releaseKey(): Promise<{ pub: string; priv: string }> {
  const pub = join(CACHE, 'release.pub');
  const priv = join(CACHE, 'release.key');
  if (!existsSync(pub) || !existsSync(priv)) {
    await mkdir(CACHE, { recursive: true });
    const k = await generateSigningKey('otaab device test <release@example.com>');
    await writeFile(priv, k.privateKey, { mode: 0o600 });
    await writeFile(pub, k.publicKey);
  }
  return { pub, priv };
}

/** What the image build leaves in the cache. */
export interface DeviceImage {
  /** Tarball of the set-up root file system (what releases are made from). */
  rootTar: string;
  /** The factory disk (raw, sparse); boot it through a copy-on-write overlay. */
  disk: string;
  /** Slot partitions' size in bytes; a slot image must not be larger. */
  slotSize: number;
  /** Size of the ext4 slot file systems (factory and releases) in bytes. */
  fsSize: number;
  /** Partition offsets in bytes. */
  offsets: { boot: number; A: number; B: number; data: number };
  /** The release key pair. */
  key: { pub: string; priv: string };
}

/** Tar of the set-up root: base + the docs' block + slimming. */
async function setupRoot(base: { tar: string; key: string }, deb: string, key: { pub: string }, log: (m: string) => void): Promise<string> {
  const block = docsSetupBlock();
  const tarKey = hash(base.key, readFileSync(deb), block, readFileSync(key.pub), KEEP_MODULES.join(','), SLIM_VERSION);
  const tar = join(CACHE, `root-${tarKey}.tar`);
  if (existsSync(tar)) return tar;
  const dir = await mkdtemp(join(CACHE, 'root-'));
  let proc = false;
  try {
    const t0 = Date.now();
    await sh('tar', ['--numeric-owner', '-xf', base.tar, '-C', dir]);
    await mkdir(join(dir, 'tmp', 'otaab-setup'), { recursive: true });
    await copyFile(deb, join(dir, 'tmp', 'otaab-setup', 'otaab-agent.deb'));
    await copyFile(key.pub, join(dir, 'tmp', 'otaab-setup', 'release.pub'));
    proc = (await execa('mount', ['-t', 'proc', 'proc', join(dir, 'proc')], { reject: false })).exitCode === 0;
    log('running docs/AGENT.md\'s device-setup block in the chroot');
    await inRoot(dir, ['sh', '-eux'], block);
    // The image stays small: no docs, locales, hardware database or unused modules.
    await inRoot(dir, ['sh', '-euc', [
      'rm -rf /tmp/otaab-setup /usr/share/doc/* /usr/share/man/* /usr/share/info/* /var/cache/apt/* /var/lib/apt/lists/* /usr/share/locale/* /usr/lib/udev/hwdb.d/* /usr/lib/udev/hwdb.bin',
      'cd /lib/modules/*/ && mkdir ../keep && for k in ' + KEEP_MODULES.join(' ') + '; do [ -e "$k" ] && mkdir -p "../keep/$(dirname $k)" && mv "$k" "../keep/$k"; done; rm -rf kernel && mv ../keep/kernel kernel && rmdir ../keep && depmod -a "$(basename "$PWD")"',
      // The docs' block made the initramfs with every module of the kernel (30 MB): made again
      // from the modules kept, GRUB reads a third of it through the BIOS at each boot (about
      // 17 s of TCG per boot before).
      'update-initramfs -u -k all',
    ].join('\n')]);
    if (proc) await execa('umount', [join(dir, 'proc')]);
    proc = false;
    await sh('tar', ['--numeric-owner', '-cf', `${tar}.tmp`, '-C', dir, '.']);
    await rename(`${tar}.tmp`, tar);
    log(`root file system set up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    if (proc) await execa('umount', [join(dir, 'proc')], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
  return tar;
}

/** Bumped when the slimming step above changes (it is part of the set-up root's cache key). */
const SLIM_VERSION = '2';

/**
 * The board's files, over the set-up root: its mounts, its name, and the test's hooks (in
 * every slot): the agent's durable-write trace on the second serial port (the host cuts the
 * power on it), its log also on the console (the host's record of a run), and start-up
 * timeouts long enough for TCG on a loaded host (systemd's 90 s for a device is not).
 */
export const BOARD_FILES: Readonly<Record<string, string>> = {
  'etc/fstab': FSTAB,
  'etc/hostname': 'otaab-device\n',
  'etc/systemd/system/otaab-agent.service.d/device-test.conf': '[Service]\nEnvironment=OTA_DURABLE_TRACE=/dev/ttyS1\nStandardOutput=journal+console\nStandardError=journal+console\n',
  'etc/systemd/system.conf.d/device-test.conf': '[Manager]\nDefaultTimeoutStartSec=15min\nDefaultDeviceTimeoutSec=15min\n',
};

/** Tar of the device's root: the set-up root with the board's files. */
async function boardRoot(setupTar: string): Promise<string> {
  const tar = join(CACHE, `board-${hash(setupTar, JSON.stringify(BOARD_FILES))}.tar`);
  if (existsSync(tar)) return tar;
  const dir = await mkdtemp(join(CACHE, 'board-'));
  try {
    await sh('tar', ['--numeric-owner', '-xf', setupTar, '-C', dir]);
    await mkdir(join(dir, 'boot', 'ota'), { recursive: true });
    for (const [path, text] of Object.entries(BOARD_FILES)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    await sh('tar', ['--numeric-owner', '-cf', `${tar}.tmp`, '-C', dir, '.']);
    await rename(`${tar}.tmp`, tar);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return tar;
}

/** Bytes used by the tree in `tar` (GNU tar's listing). */
async function treeBytes(tar: string): Promise<number> {
  return (await stat(tar)).size;
}

/** An ext4 slot image of `size` bytes from the root tarball, changed by `edit` (a shell script run on the tree). */
export async function slotImage(rootTar: string, size: number, out: string, edit?: string): Promise<void> {
  const dir = await mkdtemp(join(CACHE, 'slot-'));
  try {
    await sh('tar', ['--numeric-owner', '-xf', rootTar, '-C', dir]);
    if (edit) await sh('sh', ['-euc', edit], { cwd: dir });
    await rm(out, { force: true });
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'otaroot', '-d', dir, out, `${Math.floor(size / 1024)}k`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The release version the factory disk's slots hold (device.env's FACTORY_VERSION). */
export const FACTORY_VERSION = '1.0.0';
const FACTORY_EDIT = `echo ${FACTORY_VERSION} > etc/demo-app.version`;

/** Builds (or finds in the cache) the image and the factory disk. */
export async function buildImage(deb: string, log: (m: string) => void): Promise<DeviceImage> {
  await mkdir(CACHE, { recursive: true });
  const key = await releaseKey();
  const base = await baseRoot(log);
  const rootTar = await boardRoot(await setupRoot(base, deb, key, log));
  // The file system gets a third more than the tree; the partition 32 MiB more for larger releases.
  const fsSize = Math.ceil(((await treeBytes(rootTar)) * 1.35) / MiB) * MiB;
  const slotSize = fsSize + 32 * MiB;
  const offsets = { boot: 1 * MiB, A: 17 * MiB, B: 17 * MiB + slotSize, data: 17 * MiB + 2 * slotSize };
  const dataSize = 64 * MiB;
  const diskKey = hash(rootTar, readFileSync(join(REPO, 'grub', 'grub.cfg')), readFileSync(join(REPO, 'grub', 'ota-select.cfg')), OTA_DEVICE_CFG, String(fsSize), FACTORY_EDIT);
  const disk = join(CACHE, `disk-${diskKey}.raw`);
  const image: DeviceImage = { rootTar, disk, slotSize, fsSize, offsets, key };
  if (existsSync(disk)) return image;
  const work = await mkdtemp(join(CACHE, 'disk-'));
  try {
    const t0 = Date.now();
    const slot = join(work, 'slot.img');
    await slotImage(rootTar, fsSize, slot, FACTORY_EDIT);
    const core = join(work, 'core.img');
    await buildCoreImage(core);
    // grub/README.md's initial env: both slots hold the factory system and may boot.
    const env = join(work, 'grubenv');
    await createEnv(env, { ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3' });
    const devCfg = join(work, 'ota-device.cfg');
    await writeFile(devCfg, OTA_DEVICE_CFG);
    const boot = join(work, 'boot.img');
    await buildBootPartition(boot, 16 * MiB, { 'grub.cfg': join(REPO, 'grub', 'grub.cfg'), 'ota-select.cfg': join(REPO, 'grub', 'ota-select.cfg'), 'ota-device.cfg': devCfg, grubenv: env });
    const dataDir = join(work, 'data');
    await mkdir(dataDir, { mode: 0o700 });
    const data = join(work, 'data.img');
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'otadata', '-d', dataDir, data, `${dataSize / 1024}k`]);
    const tmp = `${disk}.tmp`;
    await sh('truncate', ['-s', String(offsets.data + dataSize + MiB), tmp]);
    const part = (o: number, s: number, t: string) => `start=${o / 512}, size=${s / 512}, type=${t}`;
    await execa('sfdisk', ['-q', tmp], { input: `label: dos\n${part(offsets.boot, 16 * MiB, '6')}, bootable\n${part(offsets.A, slotSize, '83')}\n${part(offsets.B, slotSize, '83')}\n${part(offsets.data, dataSize, '83')}\n` });
    const put = (src: string, at: number, bs = MiB) => sh('dd', [`if=${src}`, `of=${tmp}`, `bs=${bs}`, `seek=${at / bs}`, 'conv=notrunc,sparse', 'status=none']);
    await sh('dd', [`if=/usr/lib/grub/i386-pc/boot.img`, `of=${tmp}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
    await put(core, 512, 512);
    await put(boot, offsets.boot);
    await put(slot, offsets.A);
    await put(slot, offsets.B);
    await put(data, offsets.data);
    await rename(tmp, disk);
    log(`factory disk ${disk.slice(REPO.length + 1)} (${(slotSize / MiB).toFixed(0)} MiB slots) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return image;
}

/** The cached .deb of the agent: dist/pkg/otaab-agent_<version>_amd64.deb. */
export async function agentDeb(): Promise<string> {
  const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const deb = join(REPO, 'dist', 'pkg', `otaab-agent_${version}_amd64.deb`);
  if (!existsSync(deb)) throw new Error(`${deb} is missing: run 'npm run package -- --arch amd64' first`);
  return deb;
}
