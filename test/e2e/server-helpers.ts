/**
 * The rig of the server end-to-end tests: a real `ota-server` process on a throw-away data
 * directory with a release key and tokens made by `ota-server token create`, releases uploaded
 * and published with `ota-release upload`, and supervised simulated devices (FleetDevice: real
 * GRUB, the real `ota-agent daemon`) enrolled with `ota-agent enroll`. Everything runs the
 * compiled CLIs (`npm run build` first) over 127.0.0.1.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { FleetDevice, type LogLine } from '../../scripts/fleet/device.js';
import { ServerProcess, api, createToken } from '../../scripts/fleet/server.js';
import { startFaultProxy, type FaultProxy } from '../../scripts/net/fault-proxy.js';
import type { ReportView } from '../../server/db/reports.js';
import { COMPATIBLE } from '../agent/helpers/bundles.js';
import { makeKey, type TestKey } from '../agent/helpers/keys.js';
import { ROOT } from '../helpers/cli.js';

/** A server with its key and tokens, and the devices made on it. */
export interface Stack {
  dir: string;
  key: TestKey;
  data: string;
  server: ServerProcess;
  ops: string;
  technician: string;
  enroll: string;
  devices: FleetDevice[];
  /** Every line the devices said, for failure messages. */
  logs: string[];
  stop(): Promise<void>;
}

/** Starts a server (extra `ota-server start` flags in `args`) with a fresh release key and tokens. */
export async function startStack(args: string[] = []): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-e2e-server-'));
  const key = await makeKey(dir);
  const data = join(dir, 'server-data');
  const server = await ServerProcess.start({ data, releaseKeys: [key.pubPath], args });
  const [ops, technician, enroll] = [await createToken(data, 'ops'), await createToken(data, 'technician'), await createToken(data, 'enroll')];
  const stack: Stack = {
    dir,
    key,
    data,
    server,
    ops,
    technician,
    enroll,
    devices: [],
    logs: [],
    async stop() {
      await Promise.all(stack.devices.map((d) => d.stop()));
      await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/** A stack whose devices reach the server through a fault proxy (its public URL is the proxy's). */
export async function startProxiedStack(): Promise<{ stack: Stack; proxy: FaultProxy }> {
  // The proxy must exist before the server, which announces its URL; the server's port is known after.
  const proxy = await startFaultProxy('http://127.0.0.1:9');
  const stack = await startStack(['--public-url', proxy.url]);
  proxy.setUpstream(stack.server.url);
  return { stack, proxy };
}

/** Stops what startProxiedStack started (either may be missing if it failed part-way). */
export async function stopProxiedStack(stack: Stack | undefined, proxy: FaultProxy | undefined): Promise<void> {
  await stack?.stop();
  await proxy?.close();
}

/** Options of one device. */
export interface DeviceOptions {
  id: string;
  kind?: 'raw' | 'fs';
  slotSize?: number;
  /** The URL the device enrolls at and talks to (a proxy in front of the server, say). */
  url?: string;
  /** Agent config keys (merged over the fleet defaults; `server` is merged too). */
  config?: Record<string, unknown>;
  /** Environment of the agent processes. */
  env?: Record<string, string>;
  /** Leave it powered off after enrollment. */
  start?: boolean;
}

/** Makes a device, enrolls it with `ota-agent enroll` and powers it on. */
export async function enrolledDevice(stack: Stack, o: DeviceOptions): Promise<FleetDevice> {
  const url = o.url ?? stack.server.url;
  const { server, ...rest } = o.config ?? {};
  const d = await FleetDevice.create({
    root: join(stack.dir, 'devices', o.id),
    id: o.id,
    compatible: COMPATIBLE,
    kind: o.kind ?? 'fs',
    ...(o.slotSize ? { slotSize: o.slotSize } : {}),
    trustedKeys: [stack.key.pubPath],
    // Poll every second: the tests wait for check-ins, not for the clock.
    config: { server: { url, pollIntervalSeconds: 1, ...(server as object | undefined) }, ...rest },
    ...(o.env ? { env: o.env } : {}),
  });
  d.onLog((l: LogLine) => stack.logs.push(`${l.device} ${l.source}: ${l.text}`));
  stack.devices.push(d);
  const r = await d.agent(['enroll', '--server', url, '--token', stack.enroll]);
  if (r.code !== 0) throw new Error(`${o.id}: ota-agent enroll exited ${r.code}: ${r.stderr}`);
  if (o.start !== false) d.start();
  return d;
}

/** `ota-release upload BUNDLE --channel stable` against the server. */
export async function publish(stack: Stack, bundle: string, channel = 'stable'): Promise<void> {
  const r = await execa('node', [join(ROOT, 'dist', 'release', 'cli.js'), 'upload', bundle, '--server', stack.server.url, '--channel', channel], {
    reject: false,
    env: { OTA_TOKEN: stack.ops },
  });
  if (r.exitCode !== 0) throw new Error(`ota-release upload ${bundle} exited ${r.exitCode}: ${String(r.stderr)}`);
}

/** One device as GET /v1/devices/:id shows it. */
export interface DeviceView {
  device: {
    id: string;
    version: string | null;
    slot: string | null;
    state: string | null;
    transaction: { id: string; version: string; state: string } | null;
    lastOutcome: { outcome: string; reason: string | null; version: string; at: string } | null;
    pendingRollback: string | null;
  };
  transactions: { id: string; version: string; state: string; outcome: string | null; reason: string | null }[];
  reports: ReportView[];
  rollbacks: { id: string; delivered: string | null }[];
}

/** The server's view of device `id`. */
export function deviceView(stack: Stack, id: string): Promise<DeviceView> {
  return api<DeviceView>(stack.server.url, stack.ops, 'GET', `/v1/devices/${id}`);
}

/** Polls `probe` until it returns a value (not undefined); fails with `what` and the devices' logs. */
export async function waitFor<T>(stack: Stack, what: string, probe: () => Promise<T | undefined>, seconds = 150): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      // The server may be down on purpose; keep asking until the deadline.
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${seconds} s waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}\n${stack.logs.slice(-60).join('\n')}`);
    }
    await sleep(250);
  }
}

/** Waits until the server shows the device at rest with `done` true of its view. */
export function waitDevice(stack: Stack, id: string, what: string, done: (v: DeviceView) => boolean, seconds?: number): Promise<DeviceView> {
  return waitFor(stack, `${id}: ${what}`, async () => {
    const v = await deviceView(stack, id);
    return done(v) ? v : undefined;
  }, seconds);
}
