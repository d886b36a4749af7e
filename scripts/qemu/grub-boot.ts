/**
 * The boot partition of the GRUB boot tests (the scenario suite and the watchdog hang): the
 * project's grub.cfg and ota-select.cfg, a default grubenv and the test device's settings.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEnv, DEFAULT_ENV } from '../sim/grubenv.js';
import { grubSourceDir } from '../sim/paths.js';
import { buildBootPartition, type DiskLayout } from './disk.js';

// no_timer_check: on a busy host the kernel's IO-APIC timer check under TCG can fail and panic
// ("IO-APIC + timer doesn't work!"), which would count as a try, a broken slot, of its own.
const DEVICE_CFG = `# qemu boot test: IDE disk (sda), serial console only, reboot at once on panic.
set ota_cmdline="console=ttyS0,115200 panic=1 quiet no_timer_check"
`;

/** Builds the FAT boot partition in `dir` (with its grubenv and device settings); returns its path. */
export async function buildGrubBootPartition(dir: string, layout: DiskLayout): Promise<string> {
  const grubenv = join(dir, 'grubenv');
  const deviceCfg = join(dir, 'ota-device.cfg');
  await createEnv(grubenv, { ...DEFAULT_ENV });
  await writeFile(deviceCfg, DEVICE_CFG);
  const bootPart = join(dir, 'boot.fat');
  await buildBootPartition(bootPart, layout.boot.size, {
    'grub.cfg': join(grubSourceDir(), 'grub.cfg'),
    'ota-select.cfg': join(grubSourceDir(), 'ota-select.cfg'),
    grubenv,
    'ota-device.cfg': deviceCfg,
  });
  return bootPart;
}
