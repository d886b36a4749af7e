/**
 * The demo's delta step: an EV charger with raw A/B slots on its own channel gets an image
 * release whole, then the next one by delta, and the demo shows the bytes that crossed the
 * wire: the server's counter for the bundle, `ota-release delta-report`'s prediction, and the
 * bundle's size.
 */
import { execa } from 'execa';
import { randomFillSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashFile } from '../../shared/hashing.js';
import { FleetDevice } from '../fleet/device.js';
import { api, fleet } from '../fleet/server.js';

/** What the step needs from the demo. */
export interface DeltaDemo {
  work: string;
  releaseCli: string;
  serverUrl: string;
  ops: string;
  enroll: string;
  say(text: string): void;
  detail(text: string): void;
  verbose: boolean;
}

const MIB = 1024 * 1024;
const fmt = (n: number): string => (n >= MIB ? `${(n / MIB).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** Runs the step; returns the device so the demo stops it with the others. */
export async function demoDelta(o: DeltaDemo, devices: FleetDevice[]): Promise<void> {
  const rel = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
    const r = await execa('node', [o.releaseCli, ...args], { cwd: o.work, reject: false, env });
    if (r.exitCode !== 0) throw new Error(`ota-release ${args[0]} failed (exit ${r.exitCode}): ${String(r.stderr)}`);
    return String(r.stdout);
  };
  const id = 'charger-3g-12';
  const committed = async (version: string): Promise<void> => {
    const deadline = Date.now() + 180_000;
    for (;;) {
      const row = (await fleet(o.serverUrl, o.ops)).find((r) => r.id === id);
      if (row && row.transaction === null && row.version === version && row.lastOutcome?.outcome === 'success') return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${id} to commit ${version}: ${JSON.stringify(row)}`);
      await sleep(250);
    }
  };

  o.say(`Delta updates. An EV charger on a 3G link (${id}: raw A/B image slots) enrolls on its own channel "chargers".`);
  const d = await FleetDevice.create({
    root: join(o.work, 'devices', id),
    id,
    compatible: 'ev-charger',
    kind: 'raw',
    slotSize: 40 * MIB,
    trustedKeys: [join(o.work, 'release.pub')],
    config: { server: { url: o.serverUrl, pollIntervalSeconds: 1 } },
  });
  if (o.verbose) d.onLog((l) => o.detail(`${l.device} ${l.source}: ${l.text}`));
  const r = await d.agent(['enroll', '--server', o.serverUrl, '--token', o.enroll, '--channel', 'chargers']);
  if (r.code !== 0) throw new Error(`${id}: ota-agent enroll failed: ${r.stderr}`);
  devices.push(d);
  d.start();

  const image = Buffer.alloc(32 * MIB);
  randomFillSync(image);
  Buffer.from('HEALTHY charger 3.0.0\n').copy(image, 0);
  await writeFile(join(o.work, 'charger-3.0.0.img'), image);
  const build = (v: string): Promise<string> =>
    rel(['build', '--key', 'release.key', '--product', 'charger', '--version', v, '--compatible', 'ev-charger', '--image', `rootfs=charger-${v}.img`, '--gzip', '-o', `charger-${v}.otab`]);
  await build('3.0.0');
  await rel(['upload', 'charger-3.0.0.otab', '--server', o.serverUrl, '--channel', 'chargers'], { OTA_TOKEN: o.ops });
  await committed('3.0.0');
  o.detail('charger 3.0.0 (a 32 MiB image, with its chunk index) arrived whole: the factory image shares no chunk with it;');
  o.detail('at commit the agent kept the index of its new slot for the next update');

  o.say('Charger 3.1.0 changes 1 MiB of the image. CI asks delta-report what a device running 3.0.0 will download:');
  Buffer.from('HEALTHY charger 3.1.0\n').copy(image, 0);
  randomFillSync(image, 20 * MIB, MIB);
  await writeFile(join(o.work, 'charger-3.1.0.img'), image);
  await build('3.1.0');
  const report = JSON.parse(await rel(['delta-report', 'charger-3.0.0.otab', 'charger-3.1.0.otab', '--keyring', 'release.pub', '--json'])) as {
    bundleBytes: number;
    wireBytes: number;
    requests: number;
  };
  o.detail(`full bundle ${fmt(report.bundleBytes)}; delta ${fmt(report.wireBytes)} in ${report.requests} HTTP range requests`);
  await rel(['upload', 'charger-3.1.0.otab', '--server', o.serverUrl, '--channel', 'chargers'], { OTA_TOKEN: o.ops });
  await committed('3.1.0');
  const sha = (await hashFile(join(o.work, 'charger-3.1.0.otab'))).sha256;
  const served = await api<{ bytes: number; requests: number }>(o.serverUrl, o.ops, 'GET', `/v1/bundles/${sha}/served`);
  o.detail(`${id} built its inactive slot from the chunks of the running one plus the changed ones, read it back, rebooted and committed 3.1.0.`);
  o.detail(`bytes on the wire, as the server counted them: ${fmt(served.bytes)} in ${served.requests} requests ` +
    `(${((100 * served.bytes) / report.bundleBytes).toFixed(1)} % of the bundle; delta-report said ${fmt(report.wireBytes)})`);
  if (served.bytes !== report.wireBytes) throw new Error(`the server served ${served.bytes} bytes, delta-report predicted ${report.wireBytes}`);
}
