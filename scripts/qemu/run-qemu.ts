import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { tool } from '../sim/tools.js';
import { stripAnsi } from '../sim/grub-emu.js';

/** Limits of one qemu run. */
export interface QemuLimits {
  /** Kill qemu when one boot (GRUB choosing a slot to the next choice or power-off) takes longer. */
  perBootMs: number;
  /** Kill qemu when GRUB chooses a slot more often than this: a boot loop. */
  maxBoots: number;
}

/** What one qemu run printed on its serial console and how it ended. */
export interface QemuRun {
  /** Serial console text, ANSI escapes removed. */
  log: string;
  /** How many times GRUB chose a slot. */
  boots: number;
  /** Why the run was cut short, or null when the guest powered off by itself. */
  killed: 'boot-timeout' | 'boot-loop' | null;
  /** qemu's exit code. */
  exitCode: number | undefined;
  /** Wall time of the run. */
  seconds: number;
}

const BOOT_LINE = /ota: slot [AB], attempt \d of \d/;

/**
 * Boots `disk` headless under TCG (KVM is unreliable on these hosts, see
 * notes/grub-testing.md) with the serial console on stdout. Without -no-reboot a guest
 * reboot (panic=1, GRUB's reboot) starts the firmware again; power-off ends qemu.
 */
export async function runQemu(disk: string, limits: QemuLimits, logPath?: string, extraArgs: readonly string[] = []): Promise<QemuRun> {
  return runQemuCommand('qemu-system-x86_64', [
    '-accel', 'tcg', '-machine', 'pc', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
    '-drive', `file=${disk},format=raw,if=ide`, '-boot', 'c', ...extraArgs,
  ], limits, logPath);
}

/** Runs any qemu (`program` found with tool()) with its serial console on stdout, under the same limits. */
export async function runQemuCommand(program: string, args: readonly string[], limits: QemuLimits, logPath?: string): Promise<QemuRun> {
  const started = Date.now();
  const child = execa(tool(program), args, { stdin: 'ignore', stderr: 'pipe', reject: false, buffer: { stdout: false } });

  let raw = '';
  let boots = 0;
  let killed: QemuRun['killed'] = null;
  let timer: NodeJS.Timeout | undefined;
  const stop = (why: NonNullable<QemuRun['killed']>) => {
    if (killed) return;
    killed = why;
    child.kill('SIGKILL');
  };
  const armTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stop('boot-timeout'), limits.perBootMs);
  };
  armTimer();
  child.stdout.setEncoding('latin1');
  // Line by line: qemu may hand over the console a few bytes at a time.
  let pending = '';
  child.stdout.on('data', (chunk: string) => {
    raw += chunk;
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = stripAnsi(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      if (!BOOT_LINE.test(line)) continue;
      boots++;
      if (boots > limits.maxBoots) stop('boot-loop');
      else armTimer();
    }
  });
  const result = await child;
  clearTimeout(timer);
  const log = stripAnsi(raw);
  if (logPath) await writeFile(logPath, `${log}\n--- qemu stderr ---\n${result.stderr ?? ''}`);
  return { log, boots, killed, exitCode: result.exitCode, seconds: (Date.now() - started) / 1000 };
}
