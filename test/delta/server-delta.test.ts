// Through the real server and agent (every part a real process, over 127.0.0.1): a simulated
// raw-slot device commits v1, then takes v2 by delta: single Range requests on the same bundle
// URL, the slot reads back, boots through GRUB, commits. The server's byte counters for v2 match
// what `ota-release delta-report v1 v2 --json` predicts, byte for byte and request for request.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../../scripts/fleet/server.js';
import { sha256Hex } from '../../shared/hashing.js';
import { runCli } from '../helpers/cli.js';
import { enrolledDevice, publish, startStack, waitDevice, type DeviceView, type Stack } from '../e2e/server-helpers.js';
import { deltaImage, edited, indexedBundle } from './helpers.js';

const SIZE = 6 * 1024 * 1024;
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => stack?.stop());

const committed = (version: string) => (v: DeviceView): boolean =>
  v.device.transaction === null && v.device.version === version && v.device.lastOutcome?.outcome === 'success';

interface Served {
  requests: number;
  rangeRequests: number;
  bytes: number;
}

describe('a delta update through the server', { timeout: 600_000 }, () => {
  it('lands, reads back, boots and commits; the server served what delta-report says', async () => {
    const v1 = deltaImage('1.0.0', SIZE);
    const v2 = edited(v1, '2.0.0', [[2_000_000, 300_000], [5_000_000, 4096]]);
    const b1 = await indexedBundle(stack.dir, stack.key, '1.0.0', v1);
    const b2 = await indexedBundle(stack.dir, stack.key, '2.0.0', v2);
    const d = await enrolledDevice(stack, { id: 'gw-delta', kind: 'raw', slotSize: 8 * 1024 * 1024 });
    await publish(stack, b1);
    await waitDevice(stack, d.id, 'v1 committed', committed('1.0.0'));

    await publish(stack, b2);
    await waitDevice(stack, d.id, 'v2 committed', committed('2.0.0'));
    const st = (await d.status()) as { booted: string };
    expect(st.booted).toBe('A');
    const history = JSON.parse((await d.agent(['history', '--json'])).stdout) as {
      transactions: { version: string; state: string; events: { toState: string | null; details: Record<string, unknown> | null }[] }[];
    };
    const tx = history.transactions.find((t) => t.version === '2.0.0')!;
    expect(tx.events.filter((e) => e.toState !== null).map((e) => e.toState)).toEqual(['downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed']);
    const written = tx.events.find((e) => e.toState === 'installed')!.details!;
    expect(written).toMatchObject({ delta: true, localMisses: 0 });

    const report = await runCli('release', ['delta-report', b1, b2, '--keyring', stack.key.pubPath, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const r = JSON.parse(report.stdout) as { bundleBytes: number; wireBytes: number; requests: number };
    const served = await api<Served>(stack.server.url, stack.ops, 'GET', `/v1/bundles/${sha256Hex(await readFile(b2))}/served`);
    expect(served.bytes).toBe(r.wireBytes);
    expect(served.requests).toBe(r.requests);
    expect(served.rangeRequests).toBe(served.requests);
    expect(r.wireBytes).toBeLessThan(r.bundleBytes * 0.2);
  });
});
