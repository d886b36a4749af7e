/** The bootloader backend and booted-slot source a config selects (boot.bootloader). */
import type { AgentConfig, SlotName } from '../config/types.js';
import type { Bootloader } from './bootloader.js';
import { readBootedSlot } from './cmdline.js';
import { GrubBootloader } from './grub.js';
import { TrybootBootloader, readTrybootSlot } from './tryboot.js';
import { UBootBootloader } from './uboot.js';

/** The backend of `config.boot.bootloader`. */
export function openBootloader(config: AgentConfig): Bootloader {
  const b = config.boot;
  switch (b.bootloader) {
    case 'uboot':
      return new UBootBootloader({ primaryConfig: b.fwEnvConfig, backupConfig: b.fwEnvConfigBackup, fwPrintenv: config.tools.fwPrintenv, fwSetenv: config.tools.fwSetenv });
    case 'rpi-tryboot':
      return new TrybootBootloader({ autoboot: b.autoboot, partitions: { A: b.partitionA, B: b.partitionB }, deviceTree: b.deviceTree, trybootCommand: b.trybootCommand });
    default:
      return new GrubBootloader(b.grubenv, config.tools.grubEditenv);
  }
}

/**
 * The slot running now: GRUB and U-Boot put `ota.slot=X` on the kernel command line; the
 * Raspberry Pi firmware names the booted partition in the device tree.
 */
export async function readBooted(config: AgentConfig): Promise<SlotName> {
  if (config.boot.bootloader === 'rpi-tryboot') return readTrybootSlot({ deviceTree: config.boot.deviceTree, partitions: { A: config.boot.partitionA, B: config.boot.partitionB } });
  return readBootedSlot(config.cmdlinePath);
}
