#!/usr/bin/env node
/**
 * `npm run demo`: the whole otaab story on the embedded defaults, narrated.
 *
 * A real `ota-server` runs on a throw-away data directory on 127.0.0.1. Ops make a release key
 * and tokens, build three releases with `ota-release` and publish them one after the other:
 *   v1.0.0  a healthy root file system            → every device installs and commits it
 *   v1.1.0  a root file system whose health check fails → every device rolls back to v1.0.0
 *   v1.2.0  a module-only release (linky2influx)  → devices copy their running slot, add the module
 * Three simulated devices (real GRUB under grub-emu, fs slots, the real `ota-agent daemon`)
 * enroll, update, reboot and report. Finally a technician asks the server to roll one device
 * back, and the fleet table shows where everybody stands. Exits 0 when every step happened as
 * narrated, 1 otherwise.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { keepRunning } from './demo-keep.js';
import { stagedRolloutStory } from './demo/staged.js';
import { demoDelta } from './demo/delta.js';
import { FleetDevice } from './fleet/device.js';
import { ServerProcess, api, createToken, fleet, type FleetRow } from './fleet/server.js';
import { requireSystemTools } from './setup/system-tools.js';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');
const RELEASE = join(ROOT, 'dist', 'release', 'cli.js');
const COMPATIBLE = 'x86-gw';
const DEVICES = ['gw-berlin', 'gw-lyon', 'charger-07'];
// uboot: a Raspberry-Pi-like arm64 gateway beside the x86 ones. Every boot of it runs the
// project's uboot/boot.scr in Debian's real U-Boot under qemu-system-aarch64, and its agent
// uses the U-Boot backend (fw_printenv/fw_setenv on the redundant env).
const PI_DEVICE = 'pi-gw-kiel';
const PI_COMPATIBLE = 'rpi-cm4';
DEVICES.push(PI_DEVICE);
const verbose = process.argv.includes('--verbose');
const keep = process.argv.includes('--keep');
const started = Date.now();

const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s`;
const say = (text: string): void => void process.stdout.write(`\n[${elapsed()}] ${text}\n`);
const detail = (text: string): void => void process.stdout.write(`          ${text}\n`);

async function release(work: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await execa('node', [RELEASE, ...args], { cwd: work, reject: false, env });
  if (r.exitCode !== 0) throw new Error(`ota-release ${args[0]} failed (exit ${r.exitCode}): ${String(r.stderr)}`);
  return String(r.stdout);
}

/** Polls the fleet until `done` holds for every device, or fails after `seconds`. */
async function waitFleet(url: string, token: string, what: string, done: (row: FleetRow) => boolean, seconds = 90): Promise<FleetRow[]> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const rows = await fleet(url, token);
    const ours = rows.filter((r) => DEVICES.includes(r.id));
    if (ours.length === DEVICES.length && ours.every(done)) return ours;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; fleet now:\n${ours.map((r) => `  ${r.id}: ${JSON.stringify(r)}`).join('\n')}`);
    }
    await sleep(250);
  }
}

/** What each device runs, from its own `ota-agent status` (the server knows slots and versions, not contents). */
async function running(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const d of devices) {
    const st = (await d.status()) as { booted: string; slots: { name: string; version: string | null }[] };
    out.set(d.id, st.slots.find((s) => s.name === st.booted)?.version ?? 'factory');
  }
  return out;
}

async function table(rows: FleetRow[]): Promise<string> {
  const runs = await running();
  const head = ['device', 'slot', 'running', 'newest committed', 'state', 'last outcome'];
  const body = rows.map((r) => [
    r.id,
    r.slot ?? '-',
    runs.get(r.id) ?? '-',
    r.version ?? '-',
    r.transaction ? `${r.transaction.state} ${r.transaction.version}` : (r.state ?? '-'),
    r.lastOutcome ? `${r.lastOutcome.outcome} ${r.lastOutcome.version}${r.lastOutcome.reason ? ` (${r.lastOutcome.reason})` : ''}` : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function rootfs(dir: string, version: string, healthy: boolean): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, 'usr', 'bin'), { recursive: true });
  await writeFile(join(dir, 'etc', 'os-release'), `NAME=gateway\nVERSION=${version}\n`);
  if (healthy) await writeFile(join(dir, 'etc', 'healthy'), `release ${version}\n`);
  await writeFile(join(dir, 'usr', 'bin', 'gateway-app'), `#!/bin/sh\necho "gateway app ${version}"\n`);
  await chmod(join(dir, 'usr', 'bin', 'gateway-app'), 0o755);
  // Some bulk, so that the module-only release has something to not download.
  await writeFile(join(dir, 'usr', 'lib.bin'), Buffer.alloc(1024 * 1024, version.length));
}

// Before anything is created: one message naming every missing tool, or they get installed.
requireSystemTools('demo');
const work = await mkdtemp(join(tmpdir(), 'otaab-demo-'));
let server: ServerProcess | undefined;
const devices: FleetDevice[] = [];
let ok = false;
try {
  say('Ops make an offline release key. Devices and the server will trust its public half only.');
  await release(work, ['keygen', '--out', 'release']);
  detail(`${work}/release.key stays offline; release.pub goes to devices and server`);

  say('The server starts on a throw-away data directory (SQLite, content-addressed bundles, its own online key).');
  const data = join(work, 'server-data');
  server = await ServerProcess.start({ data, releaseKeys: [join(work, 'release.pub')], args: ['--poll-interval', '5'] });
  const ops = await createToken(data, 'ops', 'demo-ci');
  const technician = await createToken(data, 'technician', 'field-tech');
  const enroll = await createToken(data, 'enroll', 'factory');
  detail(`listening on ${server.url}; tokens made for ops (CI), a technician and the factory (enrollment)`);

  say(`Three devices come out of the factory (A/B fs slots, real GRUB under grub-emu) and enroll: ${DEVICES.join(', ')}.`);
  for (const id of DEVICES) {
    const d = await FleetDevice.create({
      root: join(work, 'devices', id),
      id,
      compatible: id === PI_DEVICE ? PI_COMPATIBLE : COMPATIBLE,
      bootloader: id === PI_DEVICE ? 'uboot' : 'grub',
      kind: 'fs',
      trustedKeys: [join(work, 'release.pub')],
      config: { server: { url: server.url, pollIntervalSeconds: 1 } },
    });
    if (verbose) d.onLog((l) => detail(`${l.device} ${l.source}: ${l.text}`));
    const r = await d.agent(['enroll', '--server', server.url, '--token', enroll]);
    if (r.code !== 0) throw new Error(`${id}: ota-agent enroll failed: ${r.stderr}`);
    devices.push(d);
    d.start();
  }
  await waitFleet(server.url, ops, 'the first check-ins', (r) => r.lastSeen !== null);
  detail(`${PI_DEVICE} is a Raspberry-Pi-like arm64 gateway: it boots through real U-Boot (boot.scr, env in otaab.env + otaab.bak)`);
  detail('each device booted slot A (the factory system), passed its boot health check and checked in');

  say('Release 1.0.0: a healthy root file system. CI builds, signs, uploads and publishes it to "stable".');
  await rootfs(join(work, 'v1'), '1.0.0', true);
  await release(work, ['build', '--key', 'release.key', '--product', 'gateway', '--version', '1.0.0', '--compatible', COMPATIBLE, '--compatible', PI_COMPATIBLE, '--archive', 'rootfs=v1', '-o', 'gateway-1.0.0.otab']);
  detail((await release(work, ['upload', 'gateway-1.0.0.otab', '--server', server.url, '--channel', 'stable'], { OTA_TOKEN: ops })).trim().split('\n').join('\n          '));
  let rows = await waitFleet(server.url, ops, 'v1.0.0 committed everywhere', (r) => r.version === '1.0.0' && r.transaction === null && r.lastOutcome?.outcome === 'success');
  detail('every device downloaded it into its inactive slot B, verified every byte, read it back, armed GRUB, rebooted,');
  detail('passed its health check on B and committed; success was reported only after the commit:');
  process.stdout.write(`${await table(rows)}\n`);

  say('Release 1.1.0 has a bug: its root file system breaks the application (no /etc/healthy). It is published too.');
  await rootfs(join(work, 'v2'), '1.1.0', false);
  await release(work, ['build', '--key', 'release.key', '--product', 'gateway', '--version', '1.1.0', '--compatible', COMPATIBLE, '--compatible', PI_COMPATIBLE, '--archive', 'rootfs=v2', '-o', 'gateway-1.1.0.otab']);
  await release(work, ['upload', 'gateway-1.1.0.otab', '--server', server.url, '--channel', 'stable'], { OTA_TOKEN: ops });
  rows = await waitFleet(server.url, ops, 'v1.1.0 rolled back everywhere', (r) => r.transaction === null && r.lastOutcome?.version === '1.1.0' && r.lastOutcome.outcome === 'failure');
  detail('each device installed it into slot A, rebooted into it, ran its health check, saw it fail, disarmed A,');
  detail('rebooted back into B (still 1.0.0) and reported the failure with its reason. No device was lost:');
  process.stdout.write(`${await table(rows)}\n`);
  for (const r of rows) {
    if (r.version !== '1.0.0' || !r.lastOutcome?.reason?.startsWith('health-check:')) throw new Error(`${r.id}: expected a health-check rollback to 1.0.0, got ${JSON.stringify(r.lastOutcome)}`);
  }

  say('Release 1.2.0 ships only a new linky2influx module (the OS image is unchanged): a module-only bundle.');
  await mkdir(join(work, 'linky2influx', 'bin'), { recursive: true });
  await writeFile(join(work, 'linky2influx', 'bin', 'linky2influx'), '#!/bin/sh\necho "linky2influx 1.5.0: meter readings to InfluxDB"\n');
  await chmod(join(work, 'linky2influx', 'bin', 'linky2influx'), 0o755);
  await release(work, ['build', '--key', 'release.key', '--product', 'gateway', '--version', '1.2.0', '--compatible', COMPATIBLE, '--compatible', PI_COMPATIBLE, '--module', 'linky2influx@1.5.0=linky2influx:/opt/modules/linky2influx', '-o', 'gateway-1.2.0.otab']);
  const sizes = JSON.parse(await release(work, ['inspect', 'gateway-1.2.0.otab', '--json'])) as { entries: { name: string; size: number }[] };
  detail(`the bundle holds ${sizes.entries.map((e) => `${e.name} (${e.size} B)`).join(', ')}`);
  await release(work, ['upload', 'gateway-1.2.0.otab', '--server', server.url, '--channel', 'stable'], { OTA_TOKEN: ops });
  rows = await waitFleet(server.url, ops, 'v1.2.0 committed everywhere', (r) => r.version === '1.2.0' && r.transaction === null && r.lastOutcome?.outcome === 'success');
  detail('each device made its inactive slot equal to the running one (copying only what differs), put the module');
  detail('into /opt/modules/linky2influx, rebooted, passed its health check and committed:');
  process.stdout.write(`${await table(rows)}\n`);

  const target = DEVICES[1]!;
  say(`A technician, on the phone with the site, asks the server to roll ${target} back (the device does it at its next check-in).`);
  await api(server.url, technician, 'POST', `/v1/devices/${target}/rollback`, {});
  rows = await waitFleet(server.url, ops, `${target} rolled back`, (r) => r.id !== target || (r.transaction === null && r.lastOutcome?.reason === 'technician'));
  detail(`${target} switched back to the slot holding its previously committed release (nothing was downloaded),`);
  detail('rebooted into it and reported the rollback with reason "technician". 1.2.0 stays its newest committed');
  detail('release, so the server will not push it again; a newer release will be offered as usual.');
  if ((await running()).get(target) !== '1.0.0') throw new Error(`${target} should run 1.0.0 after the technician rollback`);

  await stagedRolloutStory({ work, url: server.url, ops, enroll, say, detail, release });
  await demoDelta({ work, releaseCli: RELEASE, serverUrl: server.url, ops, enroll, say, detail, verbose }, devices);

  say('The fleet at the end, as the server sees it, with what each device runs:');
  process.stdout.write(`${await table(rows)}\n`);
  for (const d of devices) {
    const st = await d.status();
    detail(`${d.id}: booted slot ${String(st.booted)}; ${(st.slots as { name: string; version: string | null; status: string }[]).map((s) => `${s.name}=${s.version ?? 'factory'} (${s.status})`).join(', ')}`);
  }
  ok = true;
  say(`Done in ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  if (keep) await keepRunning(server.url, { ops, technician });
} catch (err) {
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  if (server) process.stderr.write(`server output (last 2000 characters):\n${server.log.slice(-2000)}\n`);
} finally {
  await Promise.all(devices.map((d) => d.stop()));
  await server?.stop();
  await rm(work, { recursive: true, force: true });
}
process.exitCode = ok ? 0 : 1;
