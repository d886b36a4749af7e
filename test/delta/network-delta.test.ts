// A delta install over a link that breaks: the loopback fault proxy in front of the real server
// cuts the device's bundle requests at 20 random offsets. Each cut range is asked again from the
// first byte not received, so the install completes and the proxy forwards less than one chunk
// more per cut than `delta-report` says an unbroken delta install takes.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultProxy } from '../../scripts/net/fault-proxy.js';
import { DEFAULT_CHUNKING } from '../../shared/chunker.js';
import { sha256Hex } from '../../shared/hashing.js';
import { runCli } from '../helpers/cli.js';
import { enrolledDevice, publish, startProxiedStack, stopProxiedStack, waitDevice, type DeviceView, type Stack } from '../e2e/server-helpers.js';
import { deltaImage, edited, indexedBundle } from './helpers.js';

const SIZE = 8 * 1024 * 1024;
const CUTS = 20;
let stack: Stack;
let proxy: FaultProxy;

beforeAll(async () => {
  ({ stack, proxy } = await startProxiedStack());
});
afterAll(() => stopProxiedStack(stack, proxy));

const committed = (version: string) => (v: DeviceView): boolean =>
  v.device.transaction === null && v.device.version === version && v.device.lastOutcome?.outcome === 'success';

describe('a delta install over a link cut 20 times', { timeout: 600_000 }, () => {
  it('completes, re-sending less than one chunk per cut', async () => {
    const v1 = deltaImage('1.0.0', SIZE);
    const v2 = edited(v1, '2.0.0', [[1_000_000, 1_500_000], [6_000_000, 600_000]]);
    const b1 = await indexedBundle(stack.dir, stack.key, '1.0.0', v1);
    const b2 = await indexedBundle(stack.dir, stack.key, '2.0.0', v2);
    const d = await enrolledDevice(stack, { id: 'gw-cut', kind: 'raw', slotSize: 10 * 1024 * 1024, url: proxy.url });
    await publish(stack, b1);
    await waitDevice(stack, d.id, 'v1 committed', committed('1.0.0'));

    const path = `/v1/bundles/${sha256Hex(await readFile(b2))}`;
    // Seeded offsets, so a failure can be replayed: 1 byte to 96 KiB into each of the first 20 answers.
    let x = 12345;
    const offsets = Array.from({ length: CUTS }, () => 1 + ((x = (x * 1103515245 + 12345) % 2 ** 31) % (96 * 1024)));
    proxy.setPlan((r) => (r.path === path && r.n < CUTS ? { kind: 'cut', afterBytes: offsets[r.n]! } : { kind: 'pass' }));
    await publish(stack, b2);
    await waitDevice(stack, d.id, 'v2 committed', committed('2.0.0'), 300);

    const report = await runCli('release', ['delta-report', b1, b2, '--keyring', stack.key.pubPath, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const r = JSON.parse(report.stdout) as { wireBytes: number; requests: number };
    const requests = proxy.log.filter((l) => l.path === path);
    expect(requests.filter((l) => l.fault === 'cut')).toHaveLength(CUTS);
    const sent = proxy.bytesSent.get(path)!;
    const resent = sent - r.wireBytes;
    expect(sent).toBeGreaterThanOrEqual(r.wireBytes);
    expect(resent).toBeLessThan(CUTS * DEFAULT_CHUNKING.avg);
    // Each request after a cut starts where the one before stopped, never from zero.
    expect(requests.every((l) => /^bytes=\d+-\d+$/.test(l.range ?? ''))).toBe(true);
    const history = JSON.parse((await d.agent(['history', '--json'])).stdout) as { transactions: { version: string; events: { toState: string | null; details: Record<string, unknown> | null }[] }[] };
    const written = history.transactions.find((t) => t.version === '2.0.0')!.events.find((e) => e.toState === 'installed')!.details!;
    expect(written).toMatchObject({ delta: true, localMisses: 0 });
    process.stdout.write(`delta over a cut link: ${CUTS} cuts, ${sent} bytes sent for ${r.wireBytes} planned (${resent} re-sent)\n`);
  });
});
