/**
 * The bootloader interface, in RAUC's spirit: the state machine asks for a slot's state, marks
 * slots good or bad, and makes a slot primary. Everything GRUB-specific lives behind it.
 */
import type { SlotName } from '../config/types.js';

/** What the bootloader holds for one slot. */
export interface SlotBootState {
  /** The slot may be booted (`X_OK=1`). */
  readonly ok: boolean;
  /** Boot attempts used since it was last marked good (`X_TRY`). */
  readonly tries: number;
}

/** A bootloader the agent can drive. */
export interface Bootloader {
  /** Every variable of the boot environment, for status output. */
  env(): Promise<Record<string, string>>;
  /** One slot's state. */
  getState(slot: SlotName): Promise<SlotBootState>;
  /** `good`: bootable with its tries reset; `bad`: not bootable. One durable write. */
  setState(slot: SlotName, state: 'good' | 'bad'): Promise<void>;
  /** The slot the bootloader will boot next. */
  getPrimary(): Promise<SlotName>;
  /**
   * Makes `slot` the one booted next: bootable, tries reset, first in order; with
   * `disableOther` the other slot is marked bad in the same write. One durable write.
   */
  setPrimary(slot: SlotName, opts?: { disableOther?: boolean }): Promise<void>;
  /**
   * For bootloaders that need a special reboot (the Raspberry Pi's one-shot tryboot): the
   * command to run instead of the configured rebootCommand, or undefined for the normal one.
   * May write the boot state (the try is counted before the reboot).
   */
  rebootCommand?(): Promise<readonly string[] | undefined>;
}
