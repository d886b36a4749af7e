// Downloads from the real server through the loopback fault proxy (devices enroll at the
// proxy, and the server's --public-url points bundle URLs at it). A download cut at several
// offsets resumes with Range from the bytes already received, transparently to the bundle
// reader: the proxy sends less than 1.1 times the bundle in all. An agent killed in the middle
// of a download (a power-cut hook after a durable checkpoint) resumes after its restart from
// the durable offset, not from zero.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../scripts/net/fault-proxy.js';
import { Store } from '../../agent/store/store.js';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { releaseImage } from '../agent/helpers/rig.js';
import { enrolledDevice, publish, startStack, waitDevice, waitFor, type Stack } from './server-helpers.js';

let stack: Stack;
let proxy: FaultProxy;
let bundle: Buffer;
let path: string;

beforeAll(async () => {
  // The proxy needs the server's URL and the server the proxy's (for bundle URLs): start the
  // proxy on a placeholder upstream, then point it at the server.
  proxy = await startFaultProxy('http://127.0.0.1:9');
  stack = await startStack(['--public-url', proxy.url]);
  proxy.setUpstream(stack.server.url);
  const built = await imageBundle(stack.dir, stack.key, releaseImage('1.0.0', true, 2 << 20), { version: '1.0.0' });
  bundle = await readFile(built.path);
  path = `/v1/bundles/${sha256Hex(bundle)}`;
  await publish(stack, built.path);
});
afterAll(async () => {
  await stack?.stop();
  await proxy?.close();
});

const committed = (version: string) => (v: { device: { transaction: unknown; version: string | null; lastOutcome: { outcome: string } | null } }) =>
  v.device.transaction === null && v.device.version === version && v.device.lastOutcome?.outcome === 'success';

const bundleRequests = (): FaultProxy['log'] => proxy.log.filter((l) => l.path === path);

describe('downloads through a faulty network', { timeout: 600_000 }, () => {
  it('resumes a download cut at several offsets and sends less than 1.1 times the bundle', async () => {
    const cuts = [300_000, 500_000, 700_000];
    proxy.setPlan((r) => (r.path === path && r.n < cuts.length ? { kind: 'cut', afterBytes: cuts[r.n]! } : { kind: 'pass' }));
    const d = await enrolledDevice(stack, { id: 'gw-cuts', kind: 'raw', url: proxy.url });
    await waitDevice(stack, d.id, 'the release committed', committed('1.0.0'));

    const requests = bundleRequests();
    expect(requests.map((r) => r.fault)).toEqual(['cut', 'cut', 'cut', 'pass']);
    const starts = requests.map((r) => Number(/^bytes=(\d+)-$/.exec(r.range ?? 'bytes=0-')?.[1]));
    expect(starts[0]).toBe(0);
    for (let i = 1; i < starts.length; i++) expect(starts[i]).toBeGreaterThan(starts[i - 1]!);
    const sent = proxy.bytesSent.get(path)!;
    expect(sent).toBeGreaterThanOrEqual(bundle.length);
    expect(sent).toBeLessThan(1.1 * bundle.length);

    // Every cut is in the transaction's history as a retry; the slot holds the release.
    const history = JSON.parse((await d.agent(['history', '--json'])).stdout) as { transactions: { events: { type: string; details: { retry?: number } | null }[] }[] };
    expect(history.transactions[0]!.events.filter((e) => e.type === 'error' && e.details?.retry !== undefined)).toHaveLength(3);
    expect(sha256Hex((await readFile(d.dev.slots.B)).subarray(0, (2 << 20)))).toBe(sha256Hex(releaseImage('1.0.0', true, 2 << 20)));
  });

  it('resumes from the durable checkpoint after the agent is killed mid-download, not from zero', async () => {
    proxy.setPlan(() => ({ kind: 'pass' }));
    const before = bundleRequests().length;
    // 64 KiB checkpoints: each is a slot fsync and a store write. The 20th durable write of
    // the first daemon (after its boot check and the transaction's start) falls well inside
    // the 2 MiB download, right after a checkpoint was recorded.
    const d = await enrolledDevice(stack, { id: 'gw-kill', kind: 'raw', url: proxy.url, config: { checkpointBytes: 65_536 }, start: false });
    d.setEnv({ OTA_CRASH_AFTER_WRITE: '20' });
    d.start();
    await waitFor(stack, 'the first daemon to start', async () => (d.daemons >= 1 ? true : undefined));
    // Only the first daemon is cut; the one the supervisor restarts runs clean.
    d.setEnv({});
    await waitDevice(stack, d.id, 'the release committed', committed('1.0.0'));
    expect(d.daemons).toBeGreaterThanOrEqual(3);

    const requests = bundleRequests().slice(before);
    expect(requests.length).toBe(2);
    expect(requests[0]!.range).toBeUndefined();
    const from = Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? '')?.[1]);
    const store = Store.open(d.config.dataDir as string);
    let tx;
    try {
      tx = store.transactions(1)[0]!;
    } finally {
      store.close();
    }
    expect(tx).toMatchObject({ state: 'committed', bytesRead: bundle.length });
    // The restart asked for the bundle from its durable offset: several checkpoints into the
    // payload (a checkpoint falls at the first chunk past each 64 KiB of slot bytes).
    const into = from - tx.resumeDataOffset!;
    expect(into).toBeGreaterThanOrEqual(4 * 65_536);
    expect(from).toBeLessThan(bundle.length);
    // (The bytes the proxy pushed before the kill are not a measure: loopback socket buffers
    // take the whole bundle whatever the agent had read. The Range above is what counts.)
  });
});
