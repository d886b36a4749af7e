/**
 * The U-Boot backend: the A/B variables of DESIGN §5 (the same names and meaning as GRUB's)
 * in a redundant U-Boot environment that uboot/boot.cmd reads and writes at every boot.
 *
 * Redundancy: two copies, each a plain U-Boot env (CRC32 + data, what `env export -c` writes),
 * each described by its own fw_env.config: `primary` (otaab.env) and `backup` (otaab.bak).
 * Reading takes the primary and falls back to the backup when the primary is missing or its
 * CRC fails, exactly as boot.cmd does. Writing sets the whole merged env in the primary, then
 * in the backup, each with one `fw_setenv -s` (one write of the block and an fsync). A power
 * cut during either write leaves the other copy whole: before the first completes the backup
 * still holds the old env, after it the primary holds the new one.
 *
 * The env is touched only through `fw_printenv` / `fw_setenv` (libubootenv).
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { durablyAsync } from '../infra/durable.js';
import { EnvSchemeBootloader } from './env-scheme.js';
import { parseEnvList } from './grubenv.js';

/** The variables boot.cmd imports; nothing else is written by the agent. */
export const UBOOT_VARS = ['ORDER', 'A_OK', 'B_OK', 'A_TRY', 'B_TRY', 'MAX_TRIES'] as const;

/** Tools and files of the U-Boot backend. */
export interface UBootOptions {
  /** fw_env.config of the primary copy (otaab.env). */
  readonly primaryConfig: string;
  /** fw_env.config of the second copy (otaab.bak). */
  readonly backupConfig: string;
  readonly fwPrintenv?: string;
  readonly fwSetenv?: string;
}

/** The device (file) named by the first entry of an fw_env.config. */
export function fwEnvDevice(configText: string): string | undefined {
  for (const raw of configText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    return line.split(/\s+/)[0];
  }
  return undefined;
}

/** A variable value the env format and boot.cmd can carry. */
function checkValue(name: string, value: string): void {
  if (!/^[A-Z_]+$/.test(name)) throw new OtaError('BOOTENV_FAILED', `U-Boot env: invalid variable name ${JSON.stringify(name)}`);
  if (/[\0\n\r]/.test(value)) throw new OtaError('BOOTENV_FAILED', `U-Boot env: the value of ${name} holds a NUL or line break`);
}

/** One copy as read: its variables, or why it could not be read. */
type CopyRead = { ok: true; env: Record<string, string> } | { ok: false; detail: string };

/** Bootloader over a redundant U-Boot env reached through libubootenv. */
export class UBootBootloader extends EnvSchemeBootloader {
  private readonly printenv: string;
  private readonly setenv: string;

  constructor(readonly opts: UBootOptions) {
    super();
    this.printenv = opts.fwPrintenv ?? 'fw_printenv';
    this.setenv = opts.fwSetenv ?? 'fw_setenv';
  }

  private async readCopy(config: string): Promise<CopyRead> {
    const { execa } = await import('execa'); // loaded by the first U-Boot env access, not at start
    const r = await execa(this.printenv, ['-c', config], { stdin: 'ignore', reject: false });
    if (r.exitCode === 0 && !r.failed) return { ok: true, env: parseEnvList(r.stdout) };
    const detail = `${r.stderr ?? ''}`.trim().replace(/\s*\n\s*/g, '; ') || errorMessage(r);
    return { ok: false, detail: `fw_printenv -c ${config}: ${detail}` };
  }

  /** Both copies, as read now. */
  private async readBoth(): Promise<{ primary: CopyRead; backup: CopyRead }> {
    return { primary: await this.readCopy(this.opts.primaryConfig), backup: await this.readCopy(this.opts.backupConfig) };
  }

  /**
   * The env boot.cmd will read: the primary, else the backup. With neither readable, boot.cmd
   * runs on its defaults, which is an empty env here; but only when both env files exist (a
   * missing file or a wrong fw_env.config is a setup error, not an env to boot from).
   */
  private async effective(both: { primary: CopyRead; backup: CopyRead }): Promise<Record<string, string>> {
    if (both.primary.ok) return both.primary.env;
    if (both.backup.ok) return both.backup.env;
    for (const config of [this.opts.primaryConfig, this.opts.backupConfig]) {
      let device: string | undefined;
      try {
        device = fwEnvDevice(await readFile(config, 'utf8'));
      } catch (cause) {
        throw new OtaError('BOOTENV_FAILED', `U-Boot env: cannot read ${config} (${errorMessage(cause)})`, { cause });
      }
      if (!device) throw new OtaError('BOOTENV_FAILED', `U-Boot env: ${config} names no env device or file`);
      try {
        await stat(device);
      } catch (cause) {
        throw new OtaError('BOOTENV_FAILED', `U-Boot env: ${device} (from ${config}) cannot be read (${errorMessage(cause)}); create it with mkenvimage (see docs/BOOTLOADERS.md)`, { cause });
      }
    }
    return {};
  }

  /** Every variable of the env boot.cmd reads. */
  async env(): Promise<Record<string, string>> {
    return this.effective(await this.readBoth());
  }


  /**
   * Sets `vars` on top of the effective env and writes the result to both copies, primary
   * first. Skipped when both copies already hold exactly that env (flash wears).
   */
  protected async write(vars: Record<string, string>, what: string): Promise<void> {
    for (const [k, v] of Object.entries(vars)) checkValue(k, v);
    const both = await this.readBoth();
    const next: Record<string, string> = { ...(await this.effective(both)), ...vars };
    const same = (c: CopyRead) => c.ok && Object.keys(next).every((k) => c.env[k] === next[k]);
    if (same(both.primary) && same(both.backup)) return;
    const scratch = await mkdtemp(join(tmpdir(), 'otaab-fwenv-'));
    try {
      // The script sets every variable, so both copies end up identical whatever each held;
      // the same text as the default env lets fw_setenv rewrite a copy whose CRC is bad.
      const script = join(scratch, 'env.txt');
      await writeFile(script, Object.entries(next).map(([k, v]) => `${k}=${v}\n`).join(''));
      const summary = `${what}: ${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' ')}`;
      for (const [copy, config] of [['primary', this.opts.primaryConfig], ['backup', this.opts.backupConfig]] as const) {
        // The copy already right (e.g. the backup after a cut right behind the primary) stays.
        if (same(both[copy])) continue;
        await durablyAsync('ubootenv', `${summary} (${copy})`, async () => {
          const { execa } = await import('execa');
          const r = await execa(this.setenv, ['-c', config, '-f', script, '-s', script], { stdin: 'ignore', reject: false });
          if (r.exitCode !== 0 || r.failed) {
            const detail = `${r.stderr ?? ''}`.trim().replace(/\s*\n\s*/g, '; ') || errorMessage(r);
            throw new OtaError('BOOTENV_FAILED', `U-Boot env (${copy}, ${config}): ${what} failed (fw_setenv: ${detail})`);
          }
        });
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}
