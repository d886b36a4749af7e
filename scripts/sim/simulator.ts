/**
 * A device without hardware (DESIGN §10): two slots, a boot directory with the real GRUB
 * scripts and grubenv, a fake /proc/cmdline, and a "boot" that runs the real selection
 * script under grub-emu. The agent's end-to-end tests drive devices through this module.
 */
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { grubSourceDir } from './paths.js';
import { DEFAULT_ENV, createEnv, readEnv } from './grubenv.js';
import { runSelection } from './grub-emu.js';
import { execa } from 'execa';
import { repoRoot } from './paths.js';
import { tool } from './tools.js';
import { createUbootEnv, readUbootEnv, UBOOT_ENV_FILES, writeFwEnvConfig } from './ubootenv.js';
import { runUbootSelection } from './uboot-qemu.js';

/** grubenv helpers (all through grub-editenv), re-exported so a test needs one import. */
export { DEFAULT_ENV, readEnv, writeEnv, unsetEnv } from './grubenv.js';

/** A simulated device: where each of its parts lives on the host. */
export interface SimDevice {
  /** The device folder. */
  root: string;
  /** The boot partition: `grub/grub.cfg`, `grub/ota-select.cfg`, `grub/grubenv`. */
  bootDir: string;
  /** The env file the agent edits and GRUB reads. */
  grubenvPath: string;
  /** The fake /proc/cmdline, holding `ota.slot=<name>` after a successful boot. */
  cmdlinePath: string;
  /** The two root slots: files (`raw`) or directories (`fs`). */
  slots: { A: string; B: string };
  /** Whether slots are raw images or directory trees. */
  kind: 'raw' | 'fs';
  /** The bootloader the device boots with (uboot: boot.scr under real U-Boot in qemu). */
  bootloader: 'grub' | 'uboot';
  /** uboot: fw_env.config of the primary env copy (`bootDir/otaab.env`) and of the second copy. */
  fwEnvConfig: string;
  fwEnvConfigBackup: string;
}

/** Options of {@link createDevice}. */
export interface CreateDeviceOptions {
  /** `raw` slots are files, `fs` slots are directories (default `raw`). */
  kind?: 'raw' | 'fs';
  /** Size of each raw slot file in bytes (default 4 MiB). */
  slotSize?: number;
  /** MAX_TRIES written into the initial grubenv (1 to 5, default 3). */
  maxTries?: number;
  /** `grub` (default: grub-emu) or `uboot` (Debian's U-Boot under qemu-system-aarch64). */
  bootloader?: 'grub' | 'uboot';
}

/** What one simulated boot did. */
export interface BootResult {
  /** The slot GRUB chose. */
  slot: 'A' | 'B';
  /** True when that slot's kernel "panicked": nothing started, the caller must boot again. */
  crashed: boolean;
  /** The grubenv after GRUB saved it. */
  env: Record<string, string>;
  /** GRUB's console output. */
  output: string;
}

/** Slot names, in the order a fresh device prefers them. */
export const SLOTS = ['A', 'B'] as const;

const DEFAULT_SLOT_SIZE = 4 << 20;

function layout(root: string, kind: 'raw' | 'fs', bootloader: 'grub' | 'uboot' = 'grub'): SimDevice {
  const abs = resolve(root);
  const bootDir = join(abs, 'boot');
  return {
    bootloader,
    fwEnvConfig: join(abs, 'fw_env.config'),
    fwEnvConfigBackup: join(abs, 'fw_env.backup.config'),
    root: abs,
    bootDir,
    grubenvPath: join(bootDir, 'grub', 'grubenv'),
    cmdlinePath: join(abs, 'cmdline'),
    slots: { A: join(abs, 'slots', 'A'), B: join(abs, 'slots', 'B') },
    kind,
  };
}

function crashFlag(dev: SimDevice, slot: 'A' | 'B'): string {
  return join(dev.root, 'crash', slot);
}

/** Lays out a new device in `root` (created if missing) with the initial env of DESIGN §5. */
export async function createDevice(root: string, opts: CreateDeviceOptions = {}): Promise<SimDevice> {
  const kind = opts.kind ?? 'raw';
  if (kind !== 'raw' && kind !== 'fs') throw new Error(`invalid device kind ${JSON.stringify(kind)}: use raw or fs`);
  const slotSize = opts.slotSize ?? DEFAULT_SLOT_SIZE;
  if (!Number.isSafeInteger(slotSize) || slotSize <= 0) throw new Error(`invalid slotSize ${slotSize}: give a positive number of bytes`);
  const maxTries = opts.maxTries ?? 3;
  if (!Number.isInteger(maxTries) || maxTries < 1 || maxTries > 5) throw new Error(`invalid maxTries ${maxTries}: GRUB allows 1 to 5`);
  const dev = layout(root, kind, opts.bootloader ?? 'grub');
  if (existsSync(dev.grubenvPath) || existsSync(join(dev.bootDir, 'boot.scr'))) throw new Error(`${dev.root} already holds a device: open it with openDevice, or pick an empty folder`);

  await mkdir(join(dev.root, 'slots'), { recursive: true });
  await mkdir(join(dev.root, 'crash'), { recursive: true });
  if (dev.bootloader === 'uboot') {
    await createUbootBoot(dev, maxTries);
  } else {
    const grubDir = join(dev.bootDir, 'grub');
    await mkdir(grubDir, { recursive: true });
    // The device gets copies, as a real boot partition would: GRUB runs what is on the device.
    const source = grubSourceDir();
    await copyFile(join(source, 'grub.cfg'), join(grubDir, 'grub.cfg'));
    await copyFile(join(source, 'ota-select.cfg'), join(grubDir, 'ota-select.cfg'));
    await createEnv(dev.grubenvPath, { ...DEFAULT_ENV, MAX_TRIES: String(maxTries) });
  }
  for (const slot of SLOTS) {
    if (kind === 'fs') {
      await mkdir(dev.slots[slot], { recursive: true });
    } else {
      // Sparse: a slot of several hundred MiB costs nothing until written.
      const handle = await open(dev.slots[slot], 'w');
      try {
        await handle.truncate(slotSize);
      } finally {
        await handle.close();
      }
    }
  }
  await writeFile(dev.cmdlinePath, '');
  return dev;
}

/** Opens a device made by {@link createDevice}; the slot kind is read from the slots. */
export async function openDevice(root: string): Promise<SimDevice> {
  const bootloader = existsSync(join(resolve(root), 'boot', 'boot.scr')) ? 'uboot' : 'grub';
  const probe = layout(root, 'raw', bootloader);
  const bootFiles = bootloader === 'uboot' ? [join(probe.bootDir, 'otaab.env')] : [probe.grubenvPath, join(probe.bootDir, 'grub', 'ota-select.cfg')];
  for (const path of [...bootFiles, probe.slots.A, probe.slots.B]) {
    if (!existsSync(path)) throw new Error(`${probe.root} is not a simulated device: ${path} is missing (create one with createDevice)`);
  }
  const [a, b] = await Promise.all([stat(probe.slots.A), stat(probe.slots.B)]);
  if (a.isDirectory() !== b.isDirectory()) throw new Error(`${probe.root}: slot A and slot B differ in kind (one file, one directory)`);
  return layout(root, a.isDirectory() ? 'fs' : 'raw', bootloader);
}

// Two boots of one device at once would race on its grubenv; boots of different devices
// are independent and run in parallel.
const booting = new Map<string, Promise<unknown>>();

/**
 * Powers the device on: runs the real ota-select.cfg under grub-emu on an ext4 image of the
 * boot directory, writes the env GRUB saved back over `grubenvPath`, and, unless the chosen
 * slot is flagged to crash, writes its kernel command line into `cmdlinePath`.
 */
export async function boot(dev: SimDevice): Promise<BootResult> {
  const previous = booting.get(dev.root) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(() => bootOnce(dev));
  booting.set(dev.root, current);
  try {
    return await current;
  } finally {
    if (booting.get(dev.root) === current) booting.delete(dev.root);
  }
}

async function bootOnce(dev: SimDevice): Promise<BootResult> {
  if (dev.bootloader === 'uboot') return bootUboot(dev);
  const { selection, output, grubenv } = await runSelection(dev.bootDir);
  if (grubenv) {
    // Replace, never half-write: a reader (or a crash of the test) sees the old or the new env.
    const tmp = `${dev.grubenvPath}.sim-${process.pid}`;
    await writeFile(tmp, grubenv);
    await rename(tmp, dev.grubenvPath);
  }
  const slot = selection.slot;
  const crashed = existsSync(crashFlag(dev, slot));
  // A panicked kernel leaves no /proc/cmdline: empty the file so a stale slot cannot be read.
  await replaceCmdline(dev, crashed ? '' : `BOOT_IMAGE=/boot/vmlinuz root=${dev.slots[slot]} ro quiet ota.slot=${slot}\n`);
  const env = grubenv ? await readEnv(dev.grubenvPath) : {};
  return { slot, crashed, env, output };
}

/** A U-Boot device's boot partition: boot.scr from uboot/boot.cmd, board settings, both env copies. */
async function createUbootBoot(dev: SimDevice, maxTries: number): Promise<void> {
  await mkdir(dev.bootDir, { recursive: true });
  await execa(tool('mkimage'), ['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-n', 'otaab A/B boot script', '-d', join(repoRoot(), 'uboot', 'boot.cmd'), join(dev.bootDir, 'boot.scr')], { stdin: 'ignore' });
  await writeFile(join(dev.bootDir, 'otaab-device.txt'), 'ota_root_prefix=/dev/vda\nota_cmdline=console=ttyAMA0 panic=1\n');
  for (const [file, config] of [[UBOOT_ENV_FILES.primary, dev.fwEnvConfig], [UBOOT_ENV_FILES.backup, dev.fwEnvConfigBackup]] as const) {
    await createUbootEnv(join(dev.bootDir, file), { ...DEFAULT_ENV, MAX_TRIES: String(maxTries) });
    await writeFwEnvConfig(config, join(dev.bootDir, file));
  }
}

/**
 * Writes the fake /proc/cmdline by rename, as the kernel's is never seen half-made: an agent
 * command reading it while a boot writes it (an `ota-agent history` right after a reboot) sees
 * the old line or the new one, never the empty file a truncating write leaves for a moment.
 */
async function replaceCmdline(dev: SimDevice, text: string): Promise<void> {
  const tmp = `${dev.cmdlinePath}.sim-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, dev.cmdlinePath);
}

/** One boot through real U-Boot (scripts/sim/uboot-qemu.ts): boot.scr picks, counts, saves. */
async function bootUboot(dev: SimDevice): Promise<BootResult> {
  const sel = await runUbootSelection(dev.bootDir);
  const slot = sel.slot;
  const crashed = existsSync(crashFlag(dev, slot));
  await replaceCmdline(dev, crashed ? '' : `console=ttyAMA0 panic=1 root=/dev/vda${slot === 'A' ? 2 : 3} ota.slot=${slot}\n`);
  const env = await readUbootEnv(dev.fwEnvConfig).catch(() => readUbootEnv(dev.fwEnvConfigBackup));
  return { slot, crashed, env, output: sel.output };
}

/** Boots until a slot comes up without crashing; fails after `maxBoots` crashed boots. */
export async function bootUntilUp(dev: SimDevice, maxBoots = 10): Promise<{ slot: 'A' | 'B'; boots: number; env: Record<string, string> }> {
  const chosen: string[] = [];
  for (let boots = 1; boots <= maxBoots; boots++) {
    const result = await boot(dev);
    if (!result.crashed) return { slot: result.slot, boots, env: result.env };
    chosen.push(result.slot);
  }
  throw new Error(`${dev.root} did not come up in ${maxBoots} boots (crashed in ${chosen.join(' ')}): clear a crash flag with setCrash`);
}

/** Makes a slot's kernel panic on every boot (`on`), or boot normally again. */
export async function setCrash(dev: SimDevice, slot: 'A' | 'B', on: boolean): Promise<void> {
  if (slot !== 'A' && slot !== 'B') throw new Error(`invalid slot ${JSON.stringify(slot)}: use A or B`);
  await mkdir(join(dev.root, 'crash'), { recursive: true });
  if (on) await writeFile(crashFlag(dev, slot), 'kernel panics on boot\n');
  else await rm(crashFlag(dev, slot), { force: true });
}

/** Whether a slot is flagged to crash on boot. */
export function isCrashing(dev: SimDevice, slot: 'A' | 'B'): boolean {
  return existsSync(crashFlag(dev, slot));
}

/** The slot named by `ota.slot=` in the fake /proc/cmdline, or null when no system is up. */
export async function bootedSlot(dev: SimDevice): Promise<'A' | 'B' | null> {
  const text = await readFile(dev.cmdlinePath, 'utf8');
  const m = /(?:^|\s)ota\.slot=(\S+)/.exec(text);
  return m?.[1] === 'A' || m?.[1] === 'B' ? m[1] : null;
}
