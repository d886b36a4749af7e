// Bundles in object storage, end to end, every part a real process over 127.0.0.1: s3rver (the
// S3-compatible server), the loopback fault proxy in front of it (it sees, cuts and fails the
// devices' requests to the store), ota-server with storage "s3" (credentials from the usual
// AWS_* variables), simulated devices booting through real GRUB with the real agent.
//   presigned: the bundle route answers 302 to a presigned URL; a download cut mid-way resumes
//   with Range through a fresh redirect, and a 403 (what an expired URL answers) is retried
//   through the server, not a refusal. `ota-server backup` lists the bucket's bundles.
//   public: 302 to a CDN-style base URL; v1 installs whole, v2 by delta, single ranges across
//   the redirect, byte for byte what `ota-release delta-report` predicts.
import { execa } from 'execa';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from '../../scripts/net/fault-proxy.js';
import { SERVER_CLI } from '../../scripts/fleet/server.js';
import { ON_POSTGRES } from '../../scripts/fleet/test-database.js';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { releaseImage } from '../agent/helpers/rig.js';
import { runCli } from '../helpers/cli.js';
import { startS3rver, type S3Server } from '../helpers/s3-server.js';
import { deltaImage, edited, indexedBundle } from '../delta/helpers.js';
import { enrolledDevice, publish, startStack, waitDevice, type DeviceView, type Stack } from './server-helpers.js';

let s3: S3Server;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = await startS3rver();
  proxy = await startFaultProxy(s3.endpoint);
  // The servers take their credentials the way every AWS tool does.
  Object.assign(process.env, s3.env);
});
afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
});

const committed = (version: string) => (v: DeviceView): boolean =>
  v.device.transaction === null && v.device.version === version && v.device.lastOutcome?.outcome === 'success';

function storeFlags(prefix: string, endpoint: string, extra: string[]): string[] {
  return ['--storage', 's3', '--s3-endpoint', endpoint, '--s3-bucket', s3.bucket, '--s3-prefix', prefix, '--s3-path-style', 'true', ...extra];
}

describe('presigned downloads from the object store', { timeout: 600_000 }, () => {
  let stack: Stack;
  beforeAll(async () => {
    // The server talks to the store through the proxy too, so presigned URLs point at it.
    stack = await startStack(storeFlags('pre/', proxy.url, ['--bundle-download', 'presigned', '--presign-ttl', '60']));
  });
  afterAll(async () => stack?.stop());

  it('installs through the redirect; a cut resumes with Range and a 403 is asked again', async () => {
    const image = releaseImage('1.0.0', true, 2 << 20);
    const built = await imageBundle(stack.dir, stack.key, image, { version: '1.0.0' });
    const bundle = await readFile(built.path);
    const path = `/${s3.bucket}/pre/bundles/${sha256Hex(bundle)}`;
    await publish(stack, built.path);
    expect(await s3.keys('pre/')).toEqual([`pre/bundles/${sha256Hex(bundle)}`]);

    // First GET from the store cut after 300 kB; the next answered 403 as an expired URL is.
    let n = 0;
    proxy.setPlan((r) => {
      if (r.method !== 'GET' || r.path !== path) return { kind: 'pass' };
      n++;
      return n === 1 ? { kind: 'cut', afterBytes: 300_000 } : n === 2 ? { kind: 'error', status: 403 } : { kind: 'pass' };
    });
    const d = await enrolledDevice(stack, { id: 'gw-presigned', kind: 'raw' });
    await waitDevice(stack, d.id, 'the release committed', committed('1.0.0'));
    const gets = proxy.log.filter((l) => l.method === 'GET' && l.path === path);
    expect(gets.map((g) => g.fault)).toEqual(['cut', 'error', 'pass']);
    expect(gets[0]!.range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[2]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(gets[2]!.status).toBe(206);
    expect(sha256Hex((await readFile(d.dev.slots.B)).subarray(0, image.length))).toBe(sha256Hex(image));
    // Both failures are retries in the transaction's history, not a failed install.
    const history = JSON.parse((await d.agent(['history', '--json'])).stdout) as { transactions: { events: { type: string; details: { retry?: number } | null }[] }[] };
    expect(history.transactions[0]!.events.filter((e) => e.type === 'error' && e.details?.retry !== undefined)).toHaveLength(2);
  });

  // A backup copies the SQLite database; on PostgreSQL it refuses (test/server/production.test.ts).
  it.skipIf(ON_POSTGRES)('ota-server backup copies the database and key and lists the bucket\'s bundles (checked)', async () => {
    const env = { OTA_SERVER_STORAGE: 's3', OTA_SERVER_S3_ENDPOINT: s3.endpoint, OTA_SERVER_S3_BUCKET: s3.bucket, OTA_SERVER_S3_PREFIX: 'pre/', OTA_SERVER_S3_PATH_STYLE: 'true' };
    const out = join(stack.dir, 'backup');
    const r = await execa('node', [SERVER_CLI, 'backup', '--data', stack.data, '--out', out], { reject: false, env });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/database, server key; 1 bundle\(s\) left in s3:\/\/otaab\/pre\/, listed in bundles\.json/);
    const list = JSON.parse(await readFile(join(out, 'bundles.json'), 'utf8')) as { store: string; bundles: { sha256: string; key: string; size: number }[] };
    const [key] = await s3.keys('pre/bundles/');
    expect(list.store).toBe('s3://otaab/pre/');
    expect(list.bundles).toEqual([{ sha256: key!.slice('pre/bundles/'.length), key, size: expect.any(Number) }]);
    expect(await readdir(join(out, 'bundles'))).toEqual([]);
    expect((await readdir(out)).sort()).toEqual(['bundles', 'bundles.json', 'server-key.asc', 'server-key.pub', 'server.db', 'tmp']);

    // A recorded bundle the bucket lost fails the backup, which leaves nothing behind.
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
    const bad = await execa('node', [SERVER_CLI, 'backup', '--data', stack.data, '--out', join(stack.dir, 'backup-2')], { reject: false, env });
    expect(bad.exitCode).not.toBe(0);
    expect(String(bad.stderr)).toMatch(/SERVER_BACKUP_FAILED.*missing from s3:\/\/otaab\/pre\//);
    expect((await readdir(stack.dir)).filter((e) => e.includes('backup-2'))).toEqual([]);
  });
});

describe('a public base URL (a CDN) in front of the store, with a delta install', { timeout: 600_000 }, () => {
  let stack: Stack;
  beforeAll(async () => {
    // The server writes straight to the store; devices read through the proxy, the "CDN".
    stack = await startStack(storeFlags('pub/', s3.endpoint, ['--bundle-download', 'public', '--bundle-public-url', `${proxy.url}/${s3.bucket}/pub/bundles`]));
    proxy.setPlan(() => ({ kind: 'pass' }));
  });
  afterAll(async () => stack?.stop());

  it('v1 whole, v2 by delta: single ranges across the redirect, what delta-report predicts', async () => {
    const size = 6 * 1024 * 1024;
    const v1 = deltaImage('1.0.0', size);
    const v2 = edited(v1, '2.0.0', [[2_000_000, 300_000], [5_000_000, 4096]]);
    const b1 = await indexedBundle(stack.dir, stack.key, '1.0.0', v1);
    const b2 = await indexedBundle(stack.dir, stack.key, '2.0.0', v2);
    const d = await enrolledDevice(stack, { id: 'gw-cdn', kind: 'raw', slotSize: 8 * 1024 * 1024 });
    await publish(stack, b1);
    await waitDevice(stack, d.id, 'v1 committed', committed('1.0.0'));
    const p1 = `/${s3.bucket}/pub/bundles/${sha256Hex(await readFile(b1))}`;
    // The whole bundle in one 200 (after a ranged look at its head, as any indexed bundle gets).
    const v1Gets = proxy.log.filter((l) => l.path === p1);
    expect(v1Gets.filter((l) => l.status === 200)).toHaveLength(1);
    expect(v1Gets.every((l) => l.status === 200 || l.status === 206)).toBe(true);

    await publish(stack, b2);
    await waitDevice(stack, d.id, 'v2 committed', committed('2.0.0'));
    const history = JSON.parse((await d.agent(['history', '--json'])).stdout) as {
      transactions: { version: string; events: { toState: string | null; details: Record<string, unknown> | null }[] }[];
    };
    const tx = history.transactions.find((t) => t.version === '2.0.0')!;
    expect(tx.events.find((e) => e.toState === 'installed')!.details).toMatchObject({ delta: true, localMisses: 0 });

    const report = await runCli('release', ['delta-report', b1, b2, '--keyring', stack.key.pubPath, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const r = JSON.parse(report.stdout) as { bundleBytes: number; wireBytes: number; requests: number };
    const p2 = `/${s3.bucket}/pub/bundles/${sha256Hex(await readFile(b2))}`;
    const ranges = proxy.log.filter((l) => l.path === p2);
    expect(ranges).toHaveLength(r.requests);
    for (const g of ranges) {
      expect(g.range).toMatch(/^bytes=\d+-\d+$/);
      expect(g.status).toBe(206);
    }
    expect(proxy.bytesSent.get(p2)).toBe(r.wireBytes);
    expect(r.wireBytes).toBeLessThan(r.bundleBytes * 0.2);
  });
});
