/** A simulated device booted through real GRUB, its boot-time daemon pass done: ready for an install. */
import { setTimeout as sleep } from 'node:timers/promises';
import { FleetDevice } from '../fleet/device.js';
import { COMPATIBLE } from './fixture.js';

/** What the benchmark device looks like. */
export interface BenchDeviceOptions {
  root: string;
  id: string;
  kind: 'raw' | 'fs';
  /** Bytes per raw slot (sparse); ignored for fs slots. */
  slotSize?: number;
  trustedKeys: string[];
  /** Runs after the device is laid out and before it is powered on (e.g. to fill slot A). */
  beforeBoot?: (dev: FleetDevice) => Promise<unknown>;
  /**
   * Turns delta installs off (`delta.enabled: false`): the install reads the whole bundle, as
   * RAUC's and Mender's plain bundles do. With delta on, an indexed image into a raw slot whose
   * running slot has no kept index first chunks that whole slot to find what it could reuse
   * (agent/delta/slot-index.ts): 2.5 s of 512 MiB of zeros here before the first payload byte,
   * and that scan's memory. The delta install is measured by its own benchmark (delta-apply.ts).
   */
  fullInstall?: boolean;
}

// The daemon's last word on a fresh device's first boot (agent/actions/daemon.ts assessBoot).
const BOOT_DONE = /healthy, marked good|not healthy/;

/** Creates the device, powers it on and waits until its daemon has assessed the boot and exited. */
export async function bootedDevice(opts: BenchDeviceOptions): Promise<FleetDevice> {
  const dev = await FleetDevice.create({ root: opts.root, id: opts.id, compatible: COMPATIBLE, kind: opts.kind, ...(opts.slotSize ? { slotSize: opts.slotSize } : {}), trustedKeys: opts.trustedKeys, ...(opts.fullInstall ? { config: { delta: { enabled: false } } } : {}) });
  await opts.beforeBoot?.(dev);

  let done = false;
  const said: string[] = [];
  dev.onLog((l) => {
    said.push(`${l.source}: ${l.text}`);
    if (l.source === 'agent' && BOOT_DONE.test(l.text)) done = true;
  });
  dev.start();
  for (let waited = 0; !done; waited += 50) {
    if (waited > 120_000) {
      await dev.stop();
      throw new Error(`${opts.id}: no boot assessment within 120 s:\n${said.join('\n')}`);
    }
    await sleep(50);
  }
  // The daemon prints its verdict just before it exits; let it go before an install starts.
  await sleep(300);
  return dev;
}
