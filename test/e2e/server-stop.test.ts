// SIGTERM (systemd stopping the service) ends `ota-agent daemon` cleanly between two steps:
// idle, it exits 0 at once; in the middle of a download, the download stops, the transaction
// stays in `downloading` (resumed at the next start) and the daemon exits 0. Started again,
// the device finishes the update.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI } from '../../scripts/fleet/device.js';
import type { FaultProxy } from '../../scripts/net/fault-proxy.js';
import { bootUntilUp } from '../../scripts/sim/simulator.js';
import { Store } from '../../agent/store/store.js';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { releaseImage } from '../agent/helpers/rig.js';
import { enrolledDevice, publish, startProxiedStack, stopProxiedStack, waitDevice, waitFor, type Stack } from './server-helpers.js';

let stack: Stack;
let proxy: FaultProxy;

beforeAll(async () => {
  ({ stack, proxy } = await startProxiedStack());
});
afterAll(() => stopProxiedStack(stack, proxy));

describe('SIGTERM', { timeout: 300_000 }, () => {
  it('stops the daemon cleanly when idle and in the middle of a download', async () => {
    const d = await enrolledDevice(stack, { id: 'gw-stop', kind: 'raw', url: proxy.url, start: false });
    await bootUntilUp(d.dev);
    const daemon = () => execa('node', [AGENT_CLI, 'daemon', '--config', d.configPath], { reject: false, stdin: 'ignore', env: { PATH: process.env.PATH ?? '' }, extendEnv: false });

    const idle = daemon();
    await waitDevice(stack, d.id, 'a check-in', (v) => v.device.slot === 'A');
    idle.kill('SIGTERM');
    const r1 = await idle;
    expect(r1.exitCode, String(r1.stderr)).toBe(0);

    const built = await imageBundle(stack.dir, stack.key, releaseImage('1.0.0', true, 1 << 20), { version: '1.0.0' });
    const path = `/v1/bundles/${sha256Hex(await readFile(built.path))}`;
    proxy.setPlan((r) => (r.path === path && r.n === 0 ? { kind: 'stall', afterBytes: 200_000, ms: 120_000 } : { kind: 'pass' }));
    await publish(stack, built.path);
    const busy = daemon();
    await waitFor(stack, 'the download to start', async () => ((proxy.bytesSent.get(path) ?? 0) >= 200_000 ? true : undefined));
    busy.kill('SIGTERM');
    const r2 = await busy;
    expect(r2.exitCode, String(r2.stderr)).toBe(0);
    expect(String(r2.stderr)).toMatch(/SIGTERM: stopping after the current step/);
    const store = Store.open(d.config.dataDir as string);
    try {
      const tx = store.current()!;
      expect(tx.state).toBe('downloading');
      expect(store.events({ transactionId: tx.id }).map((e) => String(e.details?.error ?? ''))).toContainEqual(expect.stringMatching(/^AGENT_STOPPED: /));
    } finally {
      store.close();
    }

    d.start();
    await waitDevice(stack, d.id, 'the update after the restart', (v) => v.device.transaction === null && v.device.version === '1.0.0');
  });
});
