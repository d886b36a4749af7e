/**
 * A fleet to look at in the web console: a real `ota-server` on a throw-away data directory, a
 * release key, tokens for ops and a technician, two signed, delta-capable releases of the product
 * `gateway` (1.1.0 healthy; 1.2.0 whose health check fails on every device) and protocol devices
 * (scripts/fleet/protocol-device.ts) checking in over HTTP. Used by the console's browser test.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBundle } from '../../shared/bundle-writer.js';
import { generateSigningKey, readPrivateKey } from '../../shared/signing.js';
import { ProtocolDevice } from './protocol-device.js';
import { ServerProcess, createToken } from './server.js';

/** The releases made, and what they do on a device. */
export const RELEASES = [
  { version: '1.1.0', healthy: true, notes: 'Modbus poller 2.3, TLS 1.3 only' },
  { version: '1.2.0', healthy: false, notes: 'new telemetry agent (its health check fails: a bad release)' },
] as const;

/** What `startConsoleFleet` made. */
export interface ConsoleFleet {
  server: ServerProcess;
  url: string;
  tokens: { ops: string; technician: string; enroll: string };
  devices: ProtocolDevice[];
  /** Stops the devices, then the server. */
  stop(): Promise<void>;
}

/** Options: where, how many devices, how often they check in, extra server flags. */
export interface ConsoleFleetOptions {
  work: string;
  devices: number;
  intervalMs?: number;
  stepMs?: number;
  serverArgs?: string[];
}

/** Starts the server, uploads the releases and starts the devices. */
export async function startConsoleFleet(o: ConsoleFleetOptions): Promise<ConsoleFleet> {
  await mkdir(o.work, { recursive: true });
  const key = await generateSigningKey('release <release@example.com>');
  const pub = join(o.work, 'release.pub');
  await writeFile(pub, key.publicKey);
  const data = join(o.work, 'server-data');
  const server = await ServerProcess.start({ data, releaseKeys: [pub], args: ['--poll-interval', '5', ...(o.serverArgs ?? [])] });
  const devices: ProtocolDevice[] = [];
  try {
    const tokens = { ops: await createToken(data, 'ops', 'console-ops'), technician: await createToken(data, 'technician', 'console-tech'), enroll: await createToken(data, 'enroll', 'factory') };
    const signing = await readPrivateKey(Buffer.from(key.privateKey), 'release key');
    // Each release changes a sixteenth of the previous image: delta-capable bundles (a chunk
    // index) whose delta figures the Releases page shows.
    let rootfs = randomBytes(1024 * 1024);
    for (const r of RELEASES) {
      const image = join(o.work, `rootfs-${r.version}.img`);
      rootfs = Buffer.from(rootfs);
      randomBytes(64 * 1024).copy(rootfs, 512 * 1024);
      await writeFile(image, rootfs);
      const module = join(o.work, `app-${r.version}`);
      await mkdir(join(module, 'bin'), { recursive: true });
      await writeFile(join(module, 'bin', 'gateway-app'), `#!/bin/sh\necho gateway-app ${r.version}\n`);
      const out = join(o.work, `gateway-${r.version}.otab`);
      await buildBundle({
        product: 'gateway',
        version: r.version,
        compatible: ['x86-gw'],
        notes: r.notes,
        payloads: [
          { name: 'rootfs', type: 'image', path: image, gzip: true },
          { name: 'gateway-app', type: 'module', path: module, target: '/opt/modules/gateway-app', version: r.version },
        ],
        key: signing,
        out,
        index: {},
      });
      const res = await fetch(`${server.url}/v1/releases`, { method: 'POST', headers: { authorization: `Bearer ${tokens.ops}`, 'content-type': 'application/octet-stream' }, body: await readFile(out) });
      if (res.status !== 201) throw new Error(`upload of ${r.version}: HTTP ${res.status} ${await res.text()}`);
    }
    const bad = new Set<string>(RELEASES.filter((r) => !r.healthy).map((r) => r.version));
    const sites = ['lyon', 'berlin', 'porto', 'gdansk'];
    for (let i = 0; i < o.devices; i++) {
      const d = new ProtocolDevice({
        url: server.url,
        id: `gw-${String(i + 1).padStart(3, '0')}`,
        compatible: 'x86-gw',
        product: 'gateway',
        intervalMs: o.intervalMs ?? 800,
        stepMs: o.stepMs ?? 150,
        attributes: { hardware: i % 3 === 0 ? 'rev-c' : 'rev-b', site: sites[i % sites.length]!, agentVersion: '0.1.0' },
        fails: (v) => (bad.has(v) ? 'health-check:app' : null),
      });
      await d.enroll(tokens.enroll);
      devices.push(d);
    }
    // Some tags, as ops would set them.
    for (const d of devices.slice(0, Math.ceil(devices.length / 4))) {
      await fetch(`${server.url}/v1/devices/${d.id}/tags/pilot`, { method: 'PUT', headers: { authorization: `Bearer ${tokens.ops}` } });
    }
    for (const d of devices) d.start();
    return {
      server,
      url: server.url,
      tokens,
      devices,
      async stop() {
        await Promise.all(devices.map((d) => d.stop()));
        await server.stop();
      },
    };
  } catch (err) {
    await Promise.all(devices.map((d) => d.stop()));
    await server.stop();
    throw err;
  }
}
