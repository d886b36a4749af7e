/**
 * The U-Boot part of the qemu boot test: Debian's U-Boot for `qemu-system-aarch64 -M virt`
 * runs the project's uboot/boot.cmd (built with mkimage) from a FAT boot partition, which
 * picks a slot from the redundant env (otaab.env, otaab.bak) and boots a real Debian arm64
 * kernel with a busybox initramfs from that slot's ext4 partition. The env is written before
 * power-on by the agent's own U-Boot backend (fw_setenv), and read back after the run by the
 * same backend (fw_printenv): both directions of the shared env are checked.
 */
import { copyFile, mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { UBootBootloader } from '../../agent/boot/uboot.js';
import { repoRoot } from '../sim/paths.js';
import { DEFAULT_ENV } from '../sim/grubenv.js';
import { tool } from '../sim/tools.js';
import { createUbootEnv, readUbootEnv, setUbootEnv, UBOOT_ENV_FILES, writeFwEnvConfig } from '../sim/ubootenv.js';
import { ARM64_GENERIC, ensureArm64Busybox, ensureDebKernel } from './deb-kernel.js';
import { buildSlotImage, diskLayout, writeAt, type DiskLayout } from './disk.js';
import { initScript } from './initramfs.js';
import { buildInitramfsWith, hangInitScript } from './initramfs-any.js';
import { runQemuCommand } from './run-qemu.js';
import { cmdlineSlot, parseTrace } from './trace.js';

/** Debian's U-Boot for qemu's arm64 `virt` machine (package u-boot-qemu). */
export const UBOOT_ARM64 = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';

/** One boot scenario of the common pool (GRUB or U-Boot). */
export interface BootJob {
  id: string;
  bootloader: 'GRUB' | 'U-Boot';
  title: string;
  run(): Promise<JobOutcome>;
}

/** What a job found. */
export interface JobOutcome {
  problems: string[];
  seconds: number;
  choices: string[];
  logPath: string;
}

const mtoolsEnv = { MTOOLS_SKIP_CHECK: '1' };
const MiB = 1 << 20;

// The board settings boot.cmd imports from otaab-device.txt: virtio disk, PL011 console,
// reboot at once on panic so a broken slot costs one second.
const DEVICE_TXT = 'ota_root_prefix=/dev/vda\nota_cmdline=console=ttyAMA0 panic=1\n';

type SlotB = 'good' | 'panic' | 'hang' | 'no-kernel';

/** The env files of a disk, copied out for the agent's backend to read or write. */
interface EnvCopies {
  boot: UBootBootloader;
  primaryConfig: string;
  backupConfig: string;
  primary: string;
  backup: string;
}

interface UScenario {
  id: string;
  title: string;
  slotB: SlotB;
  /** What happens to the env before power-on (through the agent's backend or fw_setenv). */
  prepare?: (e: EnvCopies, scratch: string) => Promise<void>;
  choices: string[];
  resets: number;
  panics: number;
  hangs: number;
  loadFailures: number;
  finalSlot: 'A' | 'B';
  /** Where boot.cmd took the env from at the first boot. */
  envFrom: string;
  env: Record<string, string>;
  watchdog?: boolean;
}

const armB = async (e: EnvCopies) => e.boot.setPrimary('B');

/** The GRUB test's scenarios, plus a torn env copy and a hang caught by the watchdog. */
export const UBOOT_SCENARIOS: readonly UScenario[] = [
  {
    id: 'u-h-b-hangs', title: "(h) B arms the watchdog and hangs: each reset is a try, 3 tries, then A", slotB: 'hang', prepare: armB, watchdog: true,
    choices: ['B1', 'B2', 'B3', 'A1'], resets: 0, panics: 0, hangs: 3, loadFailures: 0, finalSlot: 'A', envFrom: 'otaab.env',
    env: { ...DEFAULT_ENV, ORDER: 'B A', A_TRY: '1', B_TRY: '3' },
  },
  {
    id: 'u-c-b-panics', title: "(c) B's kernel panics: tried MAX_TRIES=3 times, then A; B exhausted", slotB: 'panic', prepare: armB,
    choices: ['B1', 'B2', 'B3', 'A1'], resets: 0, panics: 3, hangs: 0, loadFailures: 0, finalSlot: 'A', envFrom: 'otaab.env',
    env: { ...DEFAULT_ENV, ORDER: 'B A', A_TRY: '1', B_TRY: '3' },
  },
  {
    id: 'u-e-b-no-kernel', title: "(e) B's kernel fails to load: U-Boot resets, 3 tries, then A", slotB: 'no-kernel', prepare: armB,
    choices: ['B1', 'B2', 'B3', 'A1'], resets: 0, panics: 0, hangs: 0, loadFailures: 3, finalSlot: 'A', envFrom: 'otaab.env',
    env: { ...DEFAULT_ENV, ORDER: 'B A', A_TRY: '1', B_TRY: '3' },
  },
  {
    id: 'u-a-default', title: '(a) default env boots A', slotB: 'good',
    choices: ['A1'], resets: 0, panics: 0, hangs: 0, loadFailures: 0, finalSlot: 'A', envFrom: 'otaab.env',
    env: { ...DEFAULT_ENV, A_TRY: '1' },
  },
  {
    id: 'u-b-order-b-a', title: '(b) ORDER="B A" written by the agent\'s U-Boot backend boots B', slotB: 'good', prepare: armB,
    choices: ['B1'], resets: 0, panics: 0, hangs: 0, loadFailures: 0, finalSlot: 'B', envFrom: 'otaab.env',
    env: { ...DEFAULT_ENV, ORDER: 'B A', B_TRY: '1' },
  },
  {
    id: 'u-d-both-exhausted', title: '(d) both exhausted: counters reset, first in ORDER boots', slotB: 'good',
    prepare: async (e, scratch) => {
      for (const c of [e.primaryConfig, e.backupConfig]) await setUbootEnv(c, { A_TRY: '3', B_TRY: '3' }, scratch);
    },
    choices: ['A1'], resets: 1, panics: 0, hangs: 0, loadFailures: 0, finalSlot: 'A', envFrom: 'otaab.env',
    env: { ...DEFAULT_ENV, A_TRY: '1', B_TRY: '0' },
  },
  {
    id: 'u-g-torn-primary', title: '(g) primary env torn by a cut in fw_setenv: the second copy boots B', slotB: 'good',
    prepare: async (e) => {
      await e.boot.setPrimary('B');
      const fh = await open(e.primary, 'r+');
      await fh.write(Buffer.from('torn'), 0, 4, 40);
      await fh.close();
    },
    choices: ['B1'], resets: 0, panics: 0, hangs: 0, loadFailures: 0, finalSlot: 'B', envFrom: 'otaab.bak',
    env: { ...DEFAULT_ENV, ORDER: 'B A', B_TRY: '1' },
  },
];

/** Builds the arm64 disks' parts once. */
async function buildArtifacts(work: string, cacheDir: string, log: (s: string) => void) {
  const kernel = await ensureDebKernel(cacheDir, ARM64_GENERIC, log);
  const busybox = await ensureArm64Busybox(cacheDir, log);
  const dir = join(work, 'uboot');
  await mkdir(dir);
  const initrds = { A: join(dir, 'initrd-A.img'), B: join(dir, 'initrd-B.img'), panic: join(dir, 'initrd-B-panic.img'), hang: join(dir, 'initrd-B-hang.img') };
  await Promise.all([
    buildInitramfsWith(initrds.A, busybox, initScript('A', 'good')),
    buildInitramfsWith(initrds.B, busybox, initScript('B', 'good')),
    buildInitramfsWith(initrds.panic, busybox, initScript('B', 'panic')),
    buildInitramfsWith(initrds.hang, busybox, hangInitScript('B', kernel.modules), kernel.modules),
  ]);
  const layout = diskLayout(Math.ceil((await stat(kernel.image)).size * 1.25) + 8 * MiB);
  const trees: Record<'A' | SlotB, { initrd: string; kernel: boolean }> = {
    A: { initrd: initrds.A, kernel: true },
    good: { initrd: initrds.B, kernel: true },
    panic: { initrd: initrds.panic, kernel: true },
    hang: { initrd: initrds.hang, kernel: true },
    'no-kernel': { initrd: initrds.B, kernel: false },
  };
  const images = {} as Record<'A' | SlotB, string>;
  await Promise.all(Object.entries(trees).map(async ([name, t]) => {
    const tree = join(dir, `slot-${name}`);
    await mkdir(join(tree, 'boot'), { recursive: true });
    // Debian's arm64 vmlinuz is an uncompressed Image: booti takes it as it is.
    if (t.kernel) await copyFile(kernel.image, join(tree, 'boot', 'Image'));
    await copyFile(t.initrd, join(tree, 'boot', 'initrd.img'));
    const image = join(dir, `slot-${name}.ext4`);
    await buildSlotImage(image, tree, layout.A.size);
    images[name as 'A' | SlotB] = image;
  }));

  const bootScr = join(dir, 'boot.scr');
  await execa(tool('mkimage'), ['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-n', 'otaab A/B boot script', '-d', join(repoRoot(), 'uboot', 'boot.cmd'), bootScr], { stdin: 'ignore' });
  const deviceTxt = join(dir, 'otaab-device.txt');
  await writeFile(deviceTxt, DEVICE_TXT);
  const envFile = join(dir, 'factory.env');
  await createUbootEnv(envFile, { ...DEFAULT_ENV });
  const bootPart = join(dir, 'boot.fat');
  await execa(tool('mkfs.fat'), ['-C', '-F', '16', '-s', '2', '-n', 'OTABOOT', bootPart, String(layout.boot.size / 1024)], { stdin: 'ignore' });
  for (const [name, path] of [['boot.scr', bootScr], ['otaab-device.txt', deviceTxt], [UBOOT_ENV_FILES.primary, envFile], [UBOOT_ENV_FILES.backup, envFile]] as const) {
    await execa(tool('mcopy'), ['-i', bootPart, path, `::/${name}`], { stdin: 'ignore', env: mtoolsEnv });
  }
  const baseDisk = join(dir, 'base.img');
  await assembleUbootDisk(baseDisk, layout, { boot: bootPart, A: images.A, B: images.good });
  return { dir, layout, images, baseDisk };
}

/** A disk with an MBR (boot partition flagged bootable, for distro boot) and three partitions. */
export async function assembleUbootDisk(out: string, layout: DiskLayout, parts: { boot: string; A: string; B: string }): Promise<void> {
  await writeFile(out, '');
  const fh = await open(out, 'r+');
  await fh.truncate(layout.total);
  await fh.close();
  const sectors = (p: { offset: number; size: number }) => `start=${p.offset / 512}, size=${p.size / 512}`;
  await execa(tool('sfdisk'), ['-q', out], { input: `label: dos\n${sectors(layout.boot)}, type=6, bootable\n${sectors(layout.A)}, type=83\n${sectors(layout.B)}, type=83\n` });
  await writeAt(out, layout.boot.offset, parts.boot);
  await writeAt(out, layout.A.offset, parts.A);
  await writeAt(out, layout.B.offset, parts.B);
}

/**
 * Copies the two env files out of the disk's FAT partition, gives them to `fn` behind the
 * agent's U-Boot backend, and (with `writeBack`) puts them back.
 */
export async function withDiskEnv<T>(disk: string, layout: DiskLayout, scratch: string, writeBack: boolean, fn: (e: EnvCopies) => Promise<T>): Promise<T> {
  await mkdir(scratch, { recursive: true });
  const dir = await mkdtemp(join(scratch, 'env-'));
  try {
    const fat = `${disk}@@${layout.boot.offset}`;
    const e: EnvCopies = {
      primary: join(dir, UBOOT_ENV_FILES.primary),
      backup: join(dir, UBOOT_ENV_FILES.backup),
      primaryConfig: join(dir, 'fw_env.config'),
      backupConfig: join(dir, 'fw_env.backup.config'),
      boot: undefined as unknown as UBootBootloader,
    };
    for (const name of [UBOOT_ENV_FILES.primary, UBOOT_ENV_FILES.backup]) {
      await execa(tool('mcopy'), ['-n', '-i', fat, `::/${name}`, join(dir, name)], { stdin: 'ignore', env: mtoolsEnv });
    }
    await writeFwEnvConfig(e.primaryConfig, e.primary);
    await writeFwEnvConfig(e.backupConfig, e.backup);
    e.boot = new UBootBootloader({ primaryConfig: e.primaryConfig, backupConfig: e.backupConfig, fwPrintenv: tool('fw_printenv'), fwSetenv: tool('fw_setenv') });
    const result = await fn(e);
    if (writeBack) {
      // Primary first, as the agent writes on a device.
      for (const name of [UBOOT_ENV_FILES.primary, UBOOT_ENV_FILES.backup]) {
        await execa(tool('mcopy'), ['-o', '-i', fat, join(dir, name), `::/${name}`], { stdin: 'ignore', env: mtoolsEnv });
      }
    }
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** qemu-system-aarch64 arguments booting Debian's U-Boot on `disk`. */
export function ubootQemuArgs(disk: string, watchdog: boolean): string[] {
  return [
    '-accel', 'tcg', '-machine', 'virt', '-cpu', 'cortex-a57', '-m', '512', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
    '-bios', UBOOT_ARM64, '-drive', `if=virtio,format=raw,file=${disk}`,
    ...(watchdog ? ['-device', 'i6300esb', '-action', 'watchdog=reset'] : []),
  ];
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sorted(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).sort(([a], [b]) => a.localeCompare(b)));
}

async function runScenario(work: string, art: Awaited<ReturnType<typeof buildArtifacts>>, s: UScenario, perBootMs: number, keep: boolean): Promise<JobOutcome> {
  const dir = join(work, s.id);
  await mkdir(dir);
  const disk = join(dir, 'disk.img');
  const logPath = join(dir, 'serial.log');
  await copyFile(art.baseDisk, disk);
  if (s.slotB !== 'good') await writeAt(disk, art.layout.B.offset, art.images[s.slotB]);
  if (s.prepare) await withDiskEnv(disk, art.layout, dir, true, (e) => s.prepare!(e, dir));

  const run = await runQemuCommand('qemu-system-aarch64', ubootQemuArgs(disk, s.watchdog ?? false), { perBootMs, maxBoots: s.choices.length + 2 }, logPath);
  const trace = parseTrace(run.log);
  const problems: string[] = [];
  const want = (what: string, got: unknown, expected: unknown) => {
    if (!same(got, expected)) problems.push(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  };
  if (run.killed === 'boot-timeout') problems.push(`a boot took longer than ${perBootMs / 1000} s: qemu was killed`);
  if (run.killed === 'boot-loop') problems.push(`U-Boot chose a slot more than ${s.choices.length + 2} times: qemu was killed`);
  want('U-Boot choices', trace.choices, s.choices);
  want('MAX_TRIES reported by U-Boot', [...new Set(trace.maxTries)], [3]);
  want('counter resets', trace.resets, s.resets);
  want('kernel panics', trace.panics, s.panics);
  want('kernel load failures', trace.loadFailures.length, s.loadFailures);
  want('hangs (watchdog armed, then silence)', (run.log.match(/OTA-INIT: slot [AB] armed the watchdog and hangs/g) ?? []).length, s.hangs);
  if (s.hangs > 0) want('i6300esb driver came up', /i6300ESB timer .*initialized/.test(run.log), true);
  want('env copy boot.cmd read first', /ota: env from (\S+):/.exec(run.log)?.[1] ?? null, s.envFrom);
  want('kernel command lines printed', trace.cmdlines.length, 1);
  const cmdline = trace.cmdlines.at(-1) ?? '';
  want('ota.slot on the kernel command line', cmdlineSlot(cmdline), s.finalSlot);
  want('root= on the kernel command line', /(?:^|\s)root=(\S+)/.exec(cmdline)?.[1] ?? null, s.finalSlot === 'A' ? '/dev/vda2' : '/dev/vda3');
  want('slot whose initrd came up', trace.initsUp, [s.finalSlot]);
  // U-Boot → agent: what U-Boot saved is what the agent's backend reads, in both copies.
  try {
    await withDiskEnv(disk, art.layout, dir, false, async (e) => {
      want('env the agent reads (fw_printenv, U-Boot backend)', sorted(await e.boot.env()), sorted(s.env));
      want('primary copy otaab.env', sorted(await readUbootEnv(e.primaryConfig)), sorted(s.env));
      want('second copy otaab.bak', sorted(await readUbootEnv(e.backupConfig)), sorted(s.env));
    });
  } catch (err) {
    problems.push(`cannot read the env back from the disk: ${(err as Error).message}`);
  }
  if (problems.length === 0 && !keep) await rm(disk, { force: true });
  return { problems, seconds: run.seconds, choices: trace.choices, logPath };
}

/** The U-Boot jobs for the common pool; builds their disks first. */
export async function ubootJobs(work: string, cacheDir: string, opts: { perBootMs: number; keep: boolean; log: (s: string) => void }): Promise<BootJob[]> {
  if (!(await stat(UBOOT_ARM64).catch(() => null))) throw new Error(`${UBOOT_ARM64} not found: install the Debian package u-boot-qemu`);
  for (const name of ['qemu-system-aarch64', 'mkimage', 'mkenvimage', 'fw_printenv', 'fw_setenv']) tool(name);
  const art = await buildArtifacts(work, cacheDir, opts.log);
  return UBOOT_SCENARIOS.map((s) => ({ id: s.id, bootloader: 'U-Boot' as const, title: s.title, run: () => runScenario(work, art, s, opts.perBootMs, opts.keep) }));
}
