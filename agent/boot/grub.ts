/**
 * The GRUB backend: writes grubenv only through `grub-editenv`, power-safely: copy grubenv to
 * grubenv.new, edit the copy, fsync it, rename it over grubenv, fsync the directory. A power
 * cut leaves either the old or the new env, never half of one. It reads the file directly when
 * it is in the plain form grub-editenv writes (`parseEnvBlock`), else with `grub-editenv list`:
 * a process spared before each write, which first reads the env to skip one that changes
 * nothing (the disarm before an install's first byte is one).
 */
import { copyFile, readFile, rename, unlink } from 'node:fs/promises';
import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runTool } from '../../shared/run-tool.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { durablyAsync } from '../infra/durable.js';
import { fsyncPath } from '../../shared/fsync.js';
import { EnvSchemeBootloader } from './env-scheme.js';
import { parseEnvBlock, parseEnvList } from './grubenv.js';

/** Bootloader over a grubenv file. */
export class GrubBootloader extends EnvSchemeBootloader {
  constructor(
    /** The grubenv file. */
    readonly envPath: string,
    /** The grub-editenv program. */
    private readonly editenv = 'grub-editenv',
  ) {
    super();
  }

  private async run(args: string[], what: string): Promise<string> {
    try {
      const r = await runTool(this.editenv, args);
      return r.stdout;
    } catch (cause) {
      const detail = (cause as { stderr?: string }).stderr?.trim() || errorMessage(cause);
      throw new OtaError('BOOTENV_FAILED', `grub env ${this.envPath}: ${what} failed (${detail})`, { cause });
    }
  }

  /** Every variable in grubenv. */
  async env(): Promise<Record<string, string>> {
    const block = await readFile(this.envPath).catch(() => undefined);
    const plain = block && parseEnvBlock(block);
    if (plain) return plain;
    return parseEnvList(await this.run([this.envPath, 'list'], 'reading'));
  }


  /**
   * Sets `vars` in one power-safe replacement of the file. Skipped when the env already holds
   * them: the write is idempotent anyway, and flash wears with every block written.
   */
  protected async write(vars: Record<string, string>, what: string): Promise<void> {
    const exists = await access(this.envPath).then(
      () => true,
      () => false,
    );
    if (exists) {
      const cur = await this.env();
      if (Object.entries(vars).every(([k, v]) => cur[k] === v)) return;
    }
    const tmp = `${this.envPath}.new`;
    const dir = dirname(this.envPath);
    await durablyAsync('grubenv', `${what}: ${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' ')}`, async () => {
      await unlink(tmp).catch(() => undefined);
      try {
        if (exists) await copyFile(this.envPath, tmp);
        else await this.run([tmp, 'create'], 'creating');
        await this.run([tmp, 'set', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], what);
        await fsyncPath(tmp);
        await rename(tmp, this.envPath);
        await fsyncPath(dir);
      } catch (cause) {
        await unlink(tmp).catch(() => undefined);
        if (cause instanceof OtaError) throw cause;
        throw new OtaError('BOOTENV_FAILED', `grub env ${this.envPath}: ${what} failed (${errorMessage(cause)})`, { cause });
      }
    });
  }
}
