/**
 * The releases of the device test: each is the set-up root file system with one change, as an
 * ext4 slot image in a signed bundle (gzip payload). Cached by the root, the change and the key.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { buildBundle } from '../../shared/bundle-writer.js';
import { readPrivateKey } from '../../shared/signing.js';
import { CACHE, slotImage, type DeviceImage } from './image.js';

/** One release of the test. */
export interface Release {
  /** What it is for (scenario names use it). */
  name: string;
  version: string;
  /** Shell run in the root tree before the image is made. */
  edit: string;
}

/** A working system: the app reports its version. */
export const GOOD: Release = { name: 'good', version: '2.0.0', edit: 'echo 2.0.0 > etc/demo-app.version' };
/** Boots, but its application fails (systemd restarts it, the health check fails). */
export const BAD_APP: Release = { name: 'bad-app', version: '3.0.0', edit: 'echo 3.0.0 > etc/demo-app.version && touch etc/demo-app.fail' };
/** Its init exits at once: the kernel panics ("Attempted to kill init") and reboots (panic=5). */
export const PANIC: Release = { name: 'panic', version: '4.0.0', edit: "rm sbin/init && printf '#!/bin/sh\\necho release 4.0.0: init exits\\nexit 1\\n' > sbin/init && chmod 755 sbin/init" };
/** Its init hangs forever: only the watchdog (armed in the initramfs) resets the machine. */
export const HANG: Release = { name: 'hang', version: '5.0.0', edit: "rm sbin/init && printf '#!/bin/sh\\necho release 5.0.0: init hangs\\nwhile :; do sleep 3600; done\\n' > sbin/init && chmod 755 sbin/init" };

/** Builds (or finds cached) the bundle of `r` for the image. */
export async function releaseBundle(image: DeviceImage, r: Release): Promise<string> {
  const key = createHash('sha256').update(image.rootTar).update('\0').update(r.version).update('\0').update(r.edit).update('\0').update(await readFile(image.key.pub)).update(String(image.fsSize)).digest('hex').slice(0, 16);
  const out = join(CACHE, `bundle-${r.name}-${r.version}-${key}.otab`);
  if (existsSync(out)) return out;
  const work = await mkdtemp(join(CACHE, 'release-'));
  try {
    const img = join(work, 'rootfs.img');
    await slotImage(image.rootTar, image.fsSize, img, r.edit);
    await buildBundle({
      product: 'gateway',
      version: r.version,
      compatible: ['qemu-x86-gw'],
      payloads: [{ name: 'rootfs', type: 'image', path: img, gzip: true }],
      key: await readPrivateKey(await readFile(image.key.priv), 'release'),
      out: `${out}.tmp`,
    });
    await rename(`${out}.tmp`, out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}
