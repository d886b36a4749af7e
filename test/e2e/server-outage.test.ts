// The server goes away in the middle of an update: the download stalls (the proxy holds the
// connection open and sends nothing), the server process is killed, check-ins and reports
// fail; then the server is started again on the same data directory and port. The update is
// delayed, resumes with Range where it stopped, commits, and every report the device made
// reaches the server exactly once.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultProxy } from '../../scripts/net/fault-proxy.js';
import { Store } from '../../agent/store/store.js';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { releaseImage } from '../agent/helpers/rig.js';
import { deviceView, enrolledDevice, publish, startProxiedStack, stopProxiedStack, waitDevice, waitFor, type Stack } from './server-helpers.js';

let stack: Stack;
let proxy: FaultProxy;

beforeAll(async () => {
  ({ stack, proxy } = await startProxiedStack());
});
afterAll(() => stopProxiedStack(stack, proxy));

interface History {
  transactions: { events: { type: string; details: { retry?: number; error?: string } | null }[] }[];
}

describe('a server down for a while', { timeout: 600_000 }, () => {
  it('delays the update but loses no report', async () => {
    const built = await imageBundle(stack.dir, stack.key, releaseImage('1.0.0', true, 1 << 20), { version: '1.0.0' });
    const path = `/v1/bundles/${sha256Hex(await readFile(built.path))}`;
    const stallAt = 300_000;
    // The first download gets 300 kB, then nothing: the link died with the server.
    proxy.setPlan((r) => (r.path === path && r.n === 0 ? { kind: 'stall', afterBytes: stallAt, ms: 120_000 } : { kind: 'pass' }));
    const d = await enrolledDevice(stack, { id: 'gw-outage', kind: 'raw', url: proxy.url, config: { checkpointBytes: 65_536, server: { stallTimeoutSeconds: 2 } } });
    await waitDevice(stack, d.id, 'its first check-in', (v) => v.device.slot === 'A');
    await publish(stack, built.path);
    await waitFor(stack, 'the download to stall', async () => ((proxy.bytesSent.get(path) ?? 0) >= stallAt ? true : undefined));
    await stack.server.stop('SIGKILL');

    // The device notices: the stalled download and the requests after it fail and are retried.
    const retries = async (): Promise<number> => {
      const r = await d.agent(['history', '--json']);
      const h = JSON.parse(r.stdout) as History;
      return h.transactions[0]?.events.filter((e) => e.type === 'error' && e.details?.retry !== undefined).length ?? 0;
    };
    await waitFor(stack, 'two download retries while the server is down', async () => ((await retries()) >= 2 ? true : undefined));
    const h = JSON.parse((await d.agent(['history', '--json'])).stdout) as History;
    expect(h.transactions[0]!.events.find((e) => e.details?.retry === 1)?.details?.error).toMatch(/^DOWNLOAD_STALLED/);

    // Reports of the transaction wait in the outbox meanwhile.
    const waiting = Store.open(d.config.dataDir as string);
    try {
      expect(waiting.pendingReports().length).toBeGreaterThan(0);
    } finally {
      waiting.close();
    }

    await stack.server.restart();
    await waitDevice(stack, d.id, 'the update after the outage', (v) => v.device.transaction === null && v.device.version === '1.0.0' && v.device.lastOutcome?.outcome === 'success');

    // The download went on from where it stopped, not from zero.
    const resumed = proxy.log.filter((l) => l.path === path && l.status === 206).map((l) => Number(/^bytes=(\d+)-$/.exec(l.range ?? '')?.[1]));
    expect(resumed.length).toBeGreaterThan(0);
    expect(Math.min(...resumed)).toBeGreaterThan(0);

    // No report lost, none twice. Every report the device holds reached the server once. The
    // server may hold more progress reports than the device: the outbox keeps one unsent
    // progress report per transaction and updates it in place, so a progress report on its way
    // when a newer one replaced it arrives, and so does the newer one (agent/store/outbox.ts).
    // State reports are never replaced: those the server holds are exactly the device's.
    const store = Store.open(d.config.dataDir as string);
    let sent: { id: string; kind: string }[];
    let txId: string;
    try {
      expect(store.pendingReports()).toEqual([]);
      txId = store.transactions(1)[0]!.id;
      sent = store.reports(txId).map((r) => ({ id: String(r.body.id), kind: r.kind }));
    } finally {
      store.close();
    }
    const server = (await deviceView(stack, d.id)).reports.filter((r) => r.transaction === txId);
    const serverIds = server.map((r) => r.id);
    expect(new Set(serverIds).size).toBe(server.length);
    expect(serverIds).toEqual(expect.arrayContaining(sent.map((r) => r.id)));
    const stateIds = sent.filter((r) => r.kind === 'state').map((r) => r.id);
    expect(server.filter((r) => r.progress === null).map((r) => r.id).sort()).toEqual(stateIds.sort());
    const superseded = server.filter((r) => !sent.some((s) => s.id === r.id));
    expect(superseded.filter((r) => r.progress === null || r.outcome !== null)).toEqual([]);
    expect(server.filter((r) => r.outcome !== null).map((r) => r.outcome)).toEqual(['success']);
    expect(server.map((r) => r.state)).toEqual(expect.arrayContaining(['downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed']));
  });
});
