/**
 * Bundles in S3-compatible object storage (storage "s3"), against real S3-compatible servers
 * run as child processes on 127.0.0.1: s3rver (npm), and moto_server where it is installed
 * (s3rver cannot abort or list multipart uploads, so only moto shows that a refused multipart
 * upload leaves no parts behind). The server is the real app over a temporary data directory.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GeneratedKey } from '../../shared/signing.js';
import { sha256Hex } from '../../shared/hashing.js';
import { motoAvailable, startMoto, startS3rver, type S3Server } from '../helpers/s3-server.js';
import { craftBundle, imageManifest } from './craft.js';
import { resolveConfig } from '../../server/config.js';
import { bearer, enroll, releaseKey, testServer, type TestServer } from './helpers.js';

let trusted: GeneratedKey;
let stranger: GeneratedKey;
const servers: S3Server[] = [];
const apps: TestServer[] = [];

beforeAll(async () => {
  [trusted, stranger] = await Promise.all([releaseKey('ops'), releaseKey('stranger')]);
});
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const s of servers) await s.stop();
});

async function app(s3: S3Server, prefix: string, over: Record<string, unknown> = {}): Promise<TestServer> {
  const a = await testServer([trusted], {
    storage: 's3',
    s3Endpoint: s3.endpoint,
    s3Bucket: s3.bucket,
    s3Prefix: prefix,
    s3PathStyle: true,
    s3AccessKeyId: s3.accessKeyId,
    s3SecretAccessKey: s3.secretAccessKey,
    ...over,
  });
  apps.push(a);
  return a;
}

function bundleOf(version: string, payload: Buffer, key = trusted): Promise<Buffer> {
  return craftBundle({ manifest: imageManifest(version, payload), payloads: [{ name: 'rootfs', bytes: payload }], key });
}

/** A trusted bundle whose payload has one byte changed near its end: refused only after all parts were sent. */
async function tamperedAtEnd(size: number): Promise<Buffer> {
  const payload = randomBytes(size);
  const b = Buffer.from(await bundleOf('1.0.0', payload));
  const at = b.indexOf(payload.subarray(size - 64)) + 10;
  b[at] = b[at]! ^ 0x01;
  return b;
}

async function upload(s: TestServer, body: Buffer) {
  return s.app.inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' }, payload: body });
}

async function get(s: TestServer, sha: string, headers: Record<string, string> = {}) {
  return s.app.inject({ method: 'GET', url: `/v1/bundles/${sha}`, headers: { ...bearer(s.tokens.ops), ...headers } });
}

describe('storage "s3" on s3rver', { timeout: 120_000 }, () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3rver();
    servers.push(s3);
  });

  it('stores a small and a multipart upload under <prefix>bundles/<sha256>, nothing in the data directory', async () => {
    const s = await app(s3, 'up/');
    const small = await bundleOf('1.0.0', randomBytes(100 * 1024));
    // 20 MiB: three parts of 8 MiB, completed, copied to the sha256 key, staging deleted.
    const big = await bundleOf('2.0.0', randomBytes(20 * 1024 * 1024));
    for (const b of [small, big]) {
      const r = await upload(s, b);
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json()).toMatchObject({ sha256: sha256Hex(b), size: b.length });
    }
    expect(await s3.keys('up/')).toEqual([`up/bundles/${sha256Hex(small)}`, `up/bundles/${sha256Hex(big)}`].sort());
    expect(await readdir(join(s.data, 'bundles'))).toEqual([]);
    expect(await readdir(join(s.data, 'tmp'))).toEqual([]);

    // Downloads through the server: the whole bundle, and a range as a ranged GET of the store.
    const whole = await get(s, sha256Hex(big));
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(big)).toBe(true);
    const part = await get(s, sha256Hex(big), { range: 'bytes=9000000-9000099', 'if-range': `"${sha256Hex(big)}"` });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 9000000-9000099/${big.length}`);
    expect(part.headers.etag).toBe(`"${sha256Hex(big)}"`);
    expect(part.rawPayload.equals(big.subarray(9_000_000, 9_000_100))).toBe(true);
    const tail = await get(s, sha256Hex(small), { range: 'bytes=-10' });
    expect(tail.statusCode).toBe(206);
    expect(tail.rawPayload.equals(small.subarray(small.length - 10))).toBe(true);
    // A recorded bundle missing from the bucket is a 404 with the code, not a hang or a 500.
    await s3.client.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: s3.bucket, Key: `up/bundles/${sha256Hex(small)}` }));
    const gone = await get(s, sha256Hex(small));
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error).toBe('BUNDLE_NOT_FOUND');
  });

  it('a refused upload leaves no object under the prefix (small, and multipart refused at its end)', async () => {
    const s = await app(s3, 'reject/');
    const untrusted = await upload(s, await bundleOf('1.0.0', randomBytes(50 * 1024), stranger));
    expect(untrusted.json().error).toBe('SIGNATURE_UNKNOWN_KEY');
    for (const size of [50 * 1024, 18 * 1024 * 1024]) {
      const r = await upload(s, await tamperedAtEnd(size));
      expect(r.statusCode).toBe(400);
      expect(r.json().error).toBe('PAYLOAD_HASH_MISMATCH');
    }
    expect(await s3.keys('reject/')).toEqual([]);
    expect((await s.app.inject({ method: 'GET', url: '/v1/releases', headers: bearer(s.tokens.ops) })).json().releases).toEqual([]);
  });

  it('presigned: the bundle route answers 302 to a short-lived URL that serves ranges', async () => {
    const s = await app(s3, 'pre/', { bundleDownload: 'presigned', presignTtl: 60 });
    const b = await bundleOf('1.0.0', randomBytes(300 * 1024));
    expect((await upload(s, b)).statusCode).toBe(201);
    const device = await enroll(s, 'gw-1');
    const r = await s.app.inject({ method: 'GET', url: `/v1/bundles/${sha256Hex(b)}`, headers: { ...bearer(device), range: 'bytes=10-19' } });
    expect(r.statusCode).toBe(302);
    expect(r.headers['cache-control']).toBe('no-store');
    const url = new URL(String(r.headers.location));
    expect(url.origin).toBe(s3.endpoint);
    expect(url.pathname).toBe(`/${s3.bucket}/pre/bundles/${sha256Hex(b)}`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
    const ranged = await fetch(url, { headers: { range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(b.subarray(10, 20))).toBe(true);
    // Still only for authenticated callers: no token, no URL.
    expect((await s.app.inject({ method: 'GET', url: `/v1/bundles/${sha256Hex(b)}` })).statusCode).toBe(401);
  });

  it('public: the bundle route answers 302 to <bundlePublicUrl>/<sha256>', async () => {
    const base = `${s3.endpoint}/${s3.bucket}/pub/bundles`;
    const s = await app(s3, 'pub/', { bundleDownload: 'public', bundlePublicUrl: base });
    const b = await bundleOf('1.0.0', randomBytes(64 * 1024));
    expect((await upload(s, b)).statusCode).toBe(201);
    const r = await get(s, sha256Hex(b));
    expect(r.statusCode).toBe(302);
    expect(r.headers.location).toBe(`${base}/${sha256Hex(b)}`);
  });

  it('sweeps at start only unrecorded objects older than the grace period', async () => {
    const { S3BundleStore, SWEEP_GRACE_MS } = await import('../../server/storage/s3-store.js');
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const store = await S3BundleStore.open({
      endpoint: s3.endpoint, region: 'us-east-1', bucket: s3.bucket, prefix: 'sweep/', pathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }, download: 'server', presignTtl: 900, publicUrl: null, maxBundleSize: 1 << 30,
    });
    const [kept, orphan] = ['a', 'b'].map((c) => c.repeat(64));
    for (const k of [`sweep/bundles/${kept}`, `sweep/bundles/${orphan}`, 'sweep/uploads/left-over']) {
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: k, Body: Buffer.from('x') }));
    }
    expect(await store.sweep(new Set([kept!]))).toEqual([]);
    expect((await store.sweep(new Set([kept!]), Date.now() + SWEEP_GRACE_MS + 60_000)).sort()).toEqual([orphan, 'sweep/uploads/left-over'].sort());
    expect(await s3.keys('sweep/')).toEqual([`sweep/bundles/${kept}`]);
    store.client.destroy();
  });

  it('refuses to start on a bucket it cannot list, with SERVER_STORAGE_UNUSABLE', async () => {
    await expect(app(s3, 'x/', { s3Bucket: 'no-such-bucket' })).rejects.toMatchObject({ code: 'SERVER_STORAGE_UNUSABLE' });
  });
});

describe.skipIf(!motoAvailable())('storage "s3" on moto_server', { timeout: 120_000 }, () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startMoto();
    servers.push(s3);
  });

  it('a refused multipart upload is aborted: no object, no multipart upload left', async () => {
    const s = await app(s3, 'm/');
    // Refused at the last payload byte: two 8 MiB parts were sent before.
    const r = await upload(s, await tamperedAtEnd(18 * 1024 * 1024));
    expect(r.json().error).toBe('PAYLOAD_HASH_MISMATCH');
    expect(await s3.keys('m/')).toEqual([]);
    expect(await s3.multipartUploads()).toEqual([]);
    // And a good one is stored the same way as on s3rver.
    const good = await bundleOf('1.0.0', randomBytes(18 * 1024 * 1024));
    expect((await upload(s, good)).statusCode).toBe(201);
    expect(await s3.keys('m/')).toEqual([`m/bundles/${sha256Hex(good)}`]);
    expect(await s3.multipartUploads()).toEqual([]);
    const part = await get(s, sha256Hex(good), { range: 'bytes=8388600-8388700' });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload.equals(good.subarray(8_388_600, 8_388_701))).toBe(true);
  });
});

describe('storage config', () => {
  const file = (values: Record<string, unknown>) => resolveConfig([{ source: 'file', name: 'test', values: { data: '/tmp/x', ...values }, base: '/tmp' }]);
  const env = (values: Record<string, string>) => resolveConfig([{ source: 'env', name: 'environment', values, base: '/tmp' }]);

  it('defaults to the local directory, downloads through the server', () => {
    expect(file({})).toMatchObject({ storage: 'local', bundleDownload: 'server', s3Bucket: null, s3Prefix: '', s3PathStyle: false, presignTtl: 900 });
  });

  it('reads every key from the environment', () => {
    expect(
      env({
        OTA_SERVER_STORAGE: 's3',
        OTA_SERVER_S3_ENDPOINT: 'https://minio.example.com:9000/',
        OTA_SERVER_S3_REGION: 'garage',
        OTA_SERVER_S3_BUCKET: 'ota-bundles',
        OTA_SERVER_S3_PREFIX: 'prod/',
        OTA_SERVER_S3_PATH_STYLE: 'true',
        OTA_SERVER_BUNDLE_DOWNLOAD: 'presigned',
        OTA_SERVER_PRESIGN_TTL: '300',
      }),
    ).toMatchObject({ storage: 's3', s3Endpoint: 'https://minio.example.com:9000', s3Region: 'garage', s3Bucket: 'ota-bundles', s3Prefix: 'prod/', s3PathStyle: true, bundleDownload: 'presigned', presignTtl: 300 });
  });

  it.each([
    [{ storage: 's3' }, /storage "s3" needs s3Bucket/],
    [{ storage: 's3', s3Bucket: 'b-1', s3AccessKeyId: 'AKIA' }, /s3AccessKeyId and s3SecretAccessKey go together/],
    [{ bundleDownload: 'presigned' }, /"presigned" needs storage "s3"/],
    [{ bundleDownload: 'public' }, /"public" needs bundlePublicUrl/],
    [{ storage: 'gcs' }, /key "storage" must be one of local, s3/],
    [{ s3Prefix: 'no-slash' }, /key "s3Prefix" must be empty or/],
    [{ s3Bucket: 'Bad_Bucket' }, /key "s3Bucket" must be a bucket name/],
    [{ presignTtl: 5 }, /key "presignTtl" must be a whole number from 60/],
  ])('refuses %j with SERVER_CONFIG_INVALID', (values, why) => {
    expect(() => file(values)).toThrow(why);
    try {
      file(values);
    } catch (err) {
      expect((err as { code: string }).code).toBe('SERVER_CONFIG_INVALID');
    }
  });

  it('local storage with a public base URL redirects to <base>/<sha256> (a static origin over bundles/)', async () => {
    const s = await testServer([trusted], { bundleDownload: 'public', bundlePublicUrl: 'https://cdn.example.com/otaab/' });
    apps.push(s);
    const b = await bundleOf('1.0.0', randomBytes(10 * 1024));
    expect((await upload(s, b)).statusCode).toBe(201);
    expect(await readdir(join(s.data, 'bundles'))).toEqual([sha256Hex(b)]);
    const r = await get(s, sha256Hex(b));
    expect(r.statusCode).toBe(302);
    expect(r.headers.location).toBe(`https://cdn.example.com/otaab/${sha256Hex(b)}`);
  });
});
