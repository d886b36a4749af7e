import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { tool } from './tools.js';

/** The decision one run of ota-select.cfg made, as it reported it. */
export interface Selection {
  /** Slot GRUB would boot. */
  slot: 'A' | 'B';
  /** Which attempt this boot is for that slot (its new `_TRY`). */
  attempt: number;
  /** True when no slot qualified and both counters were reset. */
  reset: boolean;
  /** True when save_env succeeded. */
  saved: boolean;
}

/** A finished grub-emu run: the decision, GRUB's console text, and the env bytes it left. */
export interface SelectionRun {
  /** What the script chose. */
  selection: Selection;
  /** grub-emu's console output, ANSI escapes and carriage returns removed. */
  output: string;
  /** `/grub/grubenv` as read back from the image after the run, or null if the image has none. */
  grubenv: Buffer | null;
}

/** Options of {@link runSelection}. */
export interface RunSelectionOptions {
  /** GRUB commands run before the script is sourced (e.g. variables a console user set). */
  preamble?: string;
  /** Kill grub-emu after this long; a script that falls to a prompt would otherwise spin. */
  timeoutMs?: number;
}

/** Where grub-emu's modules live; GRUB_EMU_MODULES overrides the Debian path. */
export function emuModulesDir(): string {
  return process.env['GRUB_EMU_MODULES'] ?? '/usr/lib/grub/x86_64-emu';
}

const RESULT = /OTA_SIM_RESULT slot=(\S*) attempt=(\S*) reset=(\S*) saved=(\S*)/;

/** Removes ANSI escape sequences and carriage returns from a terminal transcript. */
export function stripAnsi(text: string): string {
  // CSI sequences (colours, cursor moves) and two-byte ESC sequences both appear in GRUB's output.
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]/g, '').replace(/\r/g, '');
}

/** Extracts the decision the wrapper printed from grub-emu's (stripped) output, or null. */
export function parseSelection(output: string): Selection | null {
  const m = RESULT.exec(output);
  if (!m) return null;
  const [, slot, attempt, reset, saved] = m;
  if (slot !== 'A' && slot !== 'B') return null;
  const n = Number(attempt);
  if (!Number.isInteger(n) || n < 1 || n > 5) return null;
  return { slot, attempt: n, reset: reset === '1', saved: saved === '1' };
}

// Mirrors what grub.cfg does on a device, minus loading a kernel (grub-emu cannot):
// the env lives on the image because save_env refuses host files ("sparse file not allowed").
const WRAPPER = (preamble: string): string => `insmod ext2
set pager=0
set root=(hd0)
${preamble}
set ota_envfile=(hd0)/grub/grubenv
source /grub/ota-select.cfg
echo "OTA_SIM_RESULT slot=$ota_slot attempt=$ota_attempt reset=$ota_reset saved=$ota_saved"
halt
`;

/**
 * Packs `bootDir` (holding `grub/ota-select.cfg` and usually `grub/grubenv`) into an ext4
 * image, runs the selection script from it under grub-emu, and returns the decision and the
 * env GRUB saved. Each call works in its own temporary directory, so calls run in parallel.
 */
export async function runSelection(bootDir: string, opts: RunSelectionOptions = {}): Promise<SelectionRun> {
  const modules = emuModulesDir();
  if (!existsSync(join(modules, 'normal.mod'))) {
    throw new Error(`grub-emu modules not found in ${modules}: install the Debian package grub-emu (or set GRUB_EMU_MODULES)`);
  }
  if (!existsSync(join(bootDir, 'grub', 'ota-select.cfg'))) {
    throw new Error(`${join(bootDir, 'grub', 'ota-select.cfg')} is missing: the boot directory has no selection script`);
  }
  const work = await mkdtemp(join(tmpdir(), 'otaab-grub-emu-'));
  try {
    const emuDir = join(work, 'emu');
    const image = join(work, 'boot.img');
    const deviceMap = join(work, 'device.map');
    await mkdir(emuDir);
    // A symlink, not a 14 MB copy per boot: grub-emu opens modules through the host file system.
    await symlink(modules, join(emuDir, 'x86_64-emu'));
    await writeFile(join(emuDir, 'grub.cfg'), WRAPPER(opts.preamble ?? ''));
    await writeFile(deviceMap, `(hd0) ${image}\n`);
    const size = Math.max(8 << 20, 2 * (await treeSize(bootDir)) + (4 << 20));
    await execa(tool('mkfs.ext4'), ['-q', '-F', '-d', bootDir, image, `${Math.ceil(size / 1024)}k`], { stdin: 'ignore' });

    const run = await execa(tool('grub-emu'), ['-d', emuDir, '-m', deviceMap, '-r', 'host'], {
      stdin: 'ignore',
      all: true,
      reject: false,
      timeout: opts.timeoutMs ?? 20_000,
    });
    const output = stripAnsi(run.all ?? '');
    if (run.timedOut) throw new Error(`grub-emu did not halt within ${opts.timeoutMs ?? 20_000} ms; output:\n${output}`);
    const selection = parseSelection(output);
    if (!selection) throw new Error(`ota-select.cfg reported no valid slot under grub-emu (exit ${run.exitCode}); output:\n${output}`);

    const dumped = join(work, 'grubenv.out');
    // debugfs exits 0 even when the file is absent, so the dump's existence is the answer.
    await execa(tool('debugfs'), ['-R', `dump /grub/grubenv "${dumped}"`, image], { stdin: 'ignore', reject: false });
    const grubenv = existsSync(dumped) ? await readFile(dumped) : null;
    return { selection, output, grubenv };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeSize(path);
    else if (entry.isFile()) total += (await stat(path)).size;
  }
  return total;
}
