/**
 * The GRUB backend: replaces grubenv power-safely: copy grubenv to grubenv.new, edit the copy,
 * fsync it, rename it over grubenv, fsync the directory. A power cut leaves either the old or the
 * new env, never half of one. A file in the plain form grub-editenv writes (1024 bytes, no
 * escaped value) is read directly (`parseEnvBlock`) and edited directly, into the very bytes
 * `grub-editenv set` writes (`setEnvBlock`, held equal to it by test/agent/grub.test.ts);
 * anything else, and creating the file, goes through `grub-editenv`. That spares a process
 * before an install's first byte (the disarm), about 20 ms when its libraries are not cached.
 */
import { access, copyFile, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runTool } from '../../shared/run-tool.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { durablyAsync } from '../infra/durable.js';
import { fsyncPath } from '../../shared/fsync.js';
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
      await unlink(tmp).catch(() => undefined);
      try {
        // The copy keeps the file's mode; its bytes are then replaced, here or by grub-editenv.
        if (exists) await copyFile(this.envPath, tmp);
        else await this.run([tmp, 'create'], 'creating');
        if (edited) await overwrite(tmp, edited);
        else {
          await this.run([tmp, 'set', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], what);
          await fsyncPath(tmp);
        }
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

/** Replaces the bytes of the file at `path` by `data` (keeping its mode) and fsyncs it. */
async function overwrite(path: string, data: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.writeFile(data);
    await fh.truncate(data.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
