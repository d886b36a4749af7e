/**
 * The GRUB backend: replaces grubenv power-safely: the new env is written to grubenv.new,
 * fsynced, renamed over grubenv, and the directory fsynced. A power cut leaves either the old or
 * the new env, never half of one. A file in the plain form grub-editenv writes (1024 bytes, no
 * escaped value) is read directly (`parseEnvBlock`) and its new block made here, the very bytes
 * `grub-editenv set` writes (`setEnvBlock`, held equal to it by test/agent/grub.test.ts), and
 * written with `replaceFileDurably`; anything else is copied to grubenv.new and edited there by
 * `grub-editenv` (which also creates a missing file). That spares a process
 * before an install's first byte (the disarm), about 20 ms when its libraries are not cached.
 */
import { access, copyFile, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runTool } from '../../shared/run-tool.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { durablyAsync } from '../infra/durable.js';
import { fsyncPath, replaceFileDurably } from '../../shared/fsync.js';
import { EnvSchemeBootloader } from './env-scheme.js';
import { parseEnvBlock, parseEnvList, setEnvBlock } from './grubenv.js';

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
    const block = await readFile(this.envPath).catch(() => undefined);
    const plain = block && parseEnvBlock(block);
    const exists =
      !!plain ||
      (await access(this.envPath).then(
        () => true,
        () => false,
      ));
    if (exists) {
      const cur = plain || (await this.env());
      if (Object.entries(vars).every(([k, v]) => cur[k] === v)) return;
    }
    const edited = plain ? setEnvBlock(block, vars) : undefined;
    const tmp = `${this.envPath}.new`;
    const dir = dirname(this.envPath);
    await durablyAsync('grubenv', `${what}: ${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' ')}`, async () => {
      try {
        if (edited) {
          // The bytes grub-editenv would write, with the file's own mode.
          await replaceFileDurably(this.envPath, edited, (await stat(this.envPath)).mode & 0o7777, tmp);
          return;
        }
        await unlink(tmp).catch(() => undefined);
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
