/**
 * The GRUB backend: reads and writes grubenv only through `grub-editenv`, and writes it
 * power-safely: copy grubenv to grubenv.new, edit the copy, fsync it, rename it over grubenv,
 * fsync the directory. A power cut leaves either the old or the new env, never half of one.
 */
import { copyFile, rename, unlink } from 'node:fs/promises';
import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runTool } from '../../shared/run-tool.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { otherSlot, type SlotName } from '../config/types.js';
import { durablyAsync } from '../infra/durable.js';
import { fsyncPath } from '../../shared/fsync.js';
import type { Bootloader, SlotBootState } from './bootloader.js';
import { nextBoot, parseEnvList, slotState } from './grubenv.js';

/** Bootloader over a grubenv file. */
export class GrubBootloader implements Bootloader {
  constructor(
    /** The grubenv file. */
    readonly envPath: string,
    /** The grub-editenv program. */
    private readonly editenv = 'grub-editenv',
  ) {}

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
    return parseEnvList(await this.run([this.envPath, 'list'], 'reading'));
  }

  /** One slot's state as grub/ota-select.cfg reads it. */
  async getState(slot: SlotName): Promise<SlotBootState> {
    return slotState(await this.env(), slot);
  }

  /** Marks a slot good (X_OK=1 X_TRY=0) or bad (X_OK=0). */
  async setState(slot: SlotName, state: 'good' | 'bad'): Promise<void> {
    await this.write(state === 'good' ? { [`${slot}_OK`]: '1', [`${slot}_TRY`]: '0' } : { [`${slot}_OK`]: '0' }, `mark ${slot} ${state}`);
  }

  /** The slot GRUB boots next. */
  async getPrimary(): Promise<SlotName> {
    return nextBoot(await this.env());
  }

  /** X_OK=1 X_TRY=0 ORDER="X Y" (and Y_OK=0 with disableOther), in one write. */
  async setPrimary(slot: SlotName, opts: { disableOther?: boolean } = {}): Promise<void> {
    const other = otherSlot(slot);
    const vars: Record<string, string> = { [`${slot}_OK`]: '1', [`${slot}_TRY`]: '0', ORDER: `${slot} ${other}` };
    if (opts.disableOther) vars[`${other}_OK`] = '0';
    await this.write(vars, `make ${slot} primary${opts.disableOther ? `, ${other} bad` : ''}`);
  }

  /**
   * Sets `vars` in one power-safe replacement of the file. Skipped when the env already holds
   * them: the write is idempotent anyway, and flash wears with every block written.
   */
  private async write(vars: Record<string, string>, what: string): Promise<void> {
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
