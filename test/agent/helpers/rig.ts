/**
 * A simulated device ready for the agent: the simulator's slots, grubenv and cmdline, a
 * release key, an agent config whose reboot command only records the request, and a health
 * check that looks at the booted slot (a raw image starting with HEALTHY, or an fs slot with
 * /etc/healthy), so a release's own content decides whether it passes.
 */
import { chmod, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevice, type SimDevice } from '../../../scripts/sim/simulator.js';
import { fakeSystemctl } from './fake-systemctl.js';
import { makeKey, type TestKey } from './keys.js';
import { COMPATIBLE } from './bundles.js';

/** A device, its agent config and the key that signs its releases. */
export interface Rig {
  dir: string;
  dev: SimDevice;
  key: TestKey;
  configPath: string;
  /** The file the reboot command appends to. */
  rebootLog: string;
  /** Extra config keys merged into the file (health checks, limits). */
  config: Record<string, unknown>;
  cleanup(): Promise<void>;
}

/** Options for a rig. */
export interface RigOptions {
  kind?: 'raw' | 'fs';
  slotSize?: number;
  maxTries?: number;
  config?: Record<string, unknown>;
}

/** Makes a device and its agent config in a fresh temp dir. */
export async function makeRig(opts: RigOptions = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-agent-rig-'));
  const dev = await createDevice(join(dir, 'device'), { kind: opts.kind ?? 'raw', slotSize: opts.slotSize ?? 1 << 20, maxTries: opts.maxTries ?? 3 });
  // The factory system on A is a healthy one, as a freshly flashed device's would be.
  if (dev.kind === 'raw') {
    const fh = await open(dev.slots.A, 'r+');
    await fh.write(releaseImage('0.0.0-factory', true), 0, undefined, 0);
    await fh.close();
  } else {
    await mkdir(join(dev.slots.A, 'etc'), { recursive: true });
    await writeFile(join(dev.slots.A, 'etc', 'healthy'), 'factory\n');
    await writeFile(join(dev.slots.A, 'etc', 'os-release'), 'VERSION=factory\n');
  }
  const key = await makeKey(dir);
  const rebootLog = join(dir, 'reboots');
  const health = join(dir, 'health.sh');
  await writeFile(
    health,
    `#!/bin/sh
# Healthy when the booted slot's release says so: what a release ships decides its fate.
slot=$(sed -n 's/.*ota\\.slot=\\([AB]\\).*/\\1/p' '${dev.cmdlinePath}')
[ -n "$slot" ] || { echo "no ota.slot in cmdline"; exit 2; }
p='${join(dev.root, 'slots')}'/$slot
if [ -d "$p" ]; then
  test -f "$p/etc/healthy" && echo "slot $slot healthy" || { echo "slot $slot: /etc/healthy missing"; exit 1; }
else
  head -c 16 "$p" | grep -q HEALTHY && echo "slot $slot healthy" || { echo "slot $slot: image not healthy"; exit 1; }
fi
`,
  );
  await chmod(health, 0o755);
  const systemctl = await fakeSystemctl(join(dir, 'units'));
  const config = {
    device: { id: 'sim-1', compatible: COMPATIBLE },
    slots: [
      { name: 'A', kind: dev.kind, path: dev.slots.A },
      { name: 'B', kind: dev.kind, path: dev.slots.B },
    ],
    boot: { grubenv: dev.grubenvPath },
    cmdlinePath: dev.cmdlinePath,
    rebootCommand: ['sh', '-c', `echo reboot >> '${rebootLog}'`],
    rebootTimeoutSeconds: 600,
    trustedKeys: [key.pubPath],
    dataDir: join(dir, 'data'),
    healthChecks: [{ name: 'app', command: [health], timeoutSeconds: 30 }],
    healthDeadlineSeconds: 60,
    tools: { systemctl },
    ...opts.config,
  };
  await mkdir(join(dir, 'data'), { recursive: true });
  const configPath = join(dir, 'agent.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  return { dir, dev, key, configPath, rebootLog, config, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** How many reboots the agent asked for so far. */
export async function rebootCount(rig: Rig): Promise<number> {
  const text = await readFile(rig.rebootLog, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l === 'reboot').length;
}

/** An image for a raw slot: HEALTHY or BROKEN, then version-specific bytes. */
export function releaseImage(version: string, healthy: boolean, size = 64 * 1024): Buffer {
  const head = Buffer.from(`${healthy ? 'HEALTHY' : 'BROKEN!'} ${version}\n`);
  const body = Buffer.alloc(size - head.length);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + version.length * 7 + version.charCodeAt(version.length - 1)) & 0xff;
  return Buffer.concat([head, body]);
}
