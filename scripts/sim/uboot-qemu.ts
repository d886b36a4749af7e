/**
 * The simulator's U-Boot "boot": the device's boot directory (boot.scr, otaab-device.txt,
 * otaab.env, otaab.bak) is packed into the FAT boot partition of a small disk, Debian's real
 * U-Boot runs under `qemu-system-aarch64 -M virt` and executes the project's boot.scr, which
 * reads the redundant env, picks a slot, counts the try and saves both env copies. The disk has
 * no slot partitions, so loading the kernel fails and U-Boot resets; `-no-reboot` turns that
 * reset into qemu's exit. The two env files are then copied back out: the analogue of
 * grub-emu for GRUB. About 3 s per boot, most of it U-Boot's fixed 2 s autoboot delay.
 */
import { copyFile, mkdtemp, open, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stripAnsi } from './grub-emu.js';
import { tool } from './tools.js';
import { UBOOT_ENV_FILES } from './ubootenv.js';

/** Debian's U-Boot for qemu's arm64 `virt` machine (package u-boot-qemu). */
export const UBOOT_BIN = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';

/** What one U-Boot run decided. */
export interface UbootSelection {
  slot: 'A' | 'B';
  attempt: number;
  maxTries: number;
  reset: boolean;
  /** The env copy boot.scr read (otaab.env, otaab.bak or none). */
  envFrom: string;
  /** U-Boot's console output. */
  output: string;
}

const MiB = 1 << 20;
const mtoolsEnv = { MTOOLS_SKIP_CHECK: '1' };

/**
 * Runs boot.scr from `bootDir` under real U-Boot and writes the env copies it saved back into
 * `bootDir` (each replaced by rename). Each call works in its own temporary directory.
 */
export async function runUbootSelection(bootDir: string, timeoutMs = 60_000): Promise<UbootSelection> {
  if (!existsSync(UBOOT_BIN)) throw new Error(`${UBOOT_BIN} not found: install the Debian package u-boot-qemu`);
  if (!existsSync(join(bootDir, 'boot.scr'))) throw new Error(`${join(bootDir, 'boot.scr')} is missing: the boot directory has no U-Boot script`);
  const work = await mkdtemp(join(tmpdir(), 'otaab-uboot-'));
  try {
    const fat = join(work, 'boot.fat');
    const disk = join(work, 'disk.img');
    await execa(tool('mkfs.fat'), ['-C', '-F', '16', '-s', '2', '-n', 'OTABOOT', fat, String(8 * 1024)], { stdin: 'ignore' });
    const files = (await readdir(bootDir)).filter((f) => !f.includes('.sim-'));
    await execa(tool('mcopy'), ['-i', fat, ...files.map((f) => join(bootDir, f)), '::/'], { stdin: 'ignore', env: mtoolsEnv });
    const fh = await open(disk, 'w');
    await fh.truncate(10 * MiB);
    await fh.close();
    // One bootable FAT partition; the slots' partitions do not exist, so no kernel loads.
    await execa(tool('sfdisk'), ['-q', disk], { input: `label: dos\nstart=${MiB / 512}, size=${(8 * MiB) / 512}, type=6, bootable\n` });
    await execa(tool('dd'), [`if=${fat}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none'], { stdin: 'ignore' });
    const run = await execa(tool('qemu-system-aarch64'), [
      '-accel', 'tcg', '-machine', 'virt', '-cpu', 'cortex-a57', '-m', '256', '-smp', '1',
      '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
      '-bios', UBOOT_BIN, '-drive', `if=virtio,format=raw,file=${disk}`,
    ], { stdin: 'ignore', all: true, reject: false, timeout: timeoutMs });
    const output = stripAnsi(run.all ?? '');
    if (run.timedOut) throw new Error(`U-Boot did not reset within ${timeoutMs} ms; output:\n${output}`);
    const m = /ota: slot ([AB]), attempt (\d) of (\d)/.exec(output);
    if (!m) throw new Error(`boot.scr reported no slot under U-Boot (qemu exit ${run.exitCode}); output:\n${output}`);
    for (const name of [UBOOT_ENV_FILES.primary, UBOOT_ENV_FILES.backup]) {
      const out = join(work, name);
      await execa(tool('mcopy'), ['-n', '-i', `${disk}@@${MiB}`, `::/${name}`, out], { stdin: 'ignore', env: mtoolsEnv });
      // Replace, never half-write: the agent may read the env at the same time.
      const tmp = join(bootDir, `${name}.sim-${process.pid}`);
      await copyFile(out, tmp);
      await rename(tmp, join(bootDir, name));
    }
    return {
      slot: m[1] as 'A' | 'B',
      attempt: Number(m[2]),
      maxTries: Number(m[3]),
      reset: output.includes('ota: no slot is OK with tries left'),
      envFrom: /ota: env from (\S+):/.exec(output)?.[1] ?? 'none',
      output,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
