/**
 * The boot-variable scheme GRUB and U-Boot share (ORDER, X_OK, X_TRY, MAX_TRIES; DESIGN §5):
 * what a slot's state is, which slot boots next, and which variables mark a slot good, bad or
 * primary. A backend supplies only how its environment is read and written.
 */
import { otherSlot, type SlotName } from '../config/types.js';
import type { Bootloader, SlotBootState } from './bootloader.js';
import { nextBoot, slotState } from './grubenv.js';

/** A bootloader whose state is the §5 variables in one environment. */
export abstract class EnvSchemeBootloader implements Bootloader {
  /** Every variable of the environment. */
  abstract env(): Promise<Record<string, string>>;

  /** Sets `vars` in one power-safe write; `what` names the change in errors. */
  protected abstract write(vars: Record<string, string>, what: string): Promise<void>;

  /** One slot's state as the boot script reads it. */
  async getState(slot: SlotName): Promise<SlotBootState> {
    return slotState(await this.env(), slot);
  }

  /** Marks a slot good (X_OK=1 X_TRY=0) or bad (X_OK=0). */
  async setState(slot: SlotName, state: 'good' | 'bad'): Promise<void> {
    await this.write(state === 'good' ? { [`${slot}_OK`]: '1', [`${slot}_TRY`]: '0' } : { [`${slot}_OK`]: '0' }, `mark ${slot} ${state}`);
  }

  /** The slot the boot script boots next. */
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
}
