// Downloads the server redirects to an object store or CDN (bundleDownload presigned|public),
// against two real local servers: "api" answers every bundle request with a 302 to "store",
// which behaves like S3: its own ETag (not the sha256), If-Range honoured strictly (a
// mismatch gets the whole object, 200), 403 for an expired URL. The agent's whole download
// and its delta range reader both keep working across the redirect: the device's token never
// reaches the store, If-Range is not sent there, a 403 is retried through the server (a fresh
// URL), a cut resumes with Range.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HttpRangeReader } from '../../agent/delta/http-range.js';
import { openHttpSource, type HttpSourceOptions } from '../../agent/download/http-source.js';
import { retryDelay } from '../../agent/download/retry.js';
import { pseudoRandom } from './helpers/bundles.js';

const body = pseudoRandom(600_000, 9);
const sha256 = createHash('sha256').update(body).digest('hex');
const STORE_ETAG = '"0123456789abcdef0123456789abcdef-3"';

type Behaviour = 'ok' | 'cut' | 'expired';
let plan: (n: number) => Behaviour = () => 'ok';
let apiHits = 0;
let storeRequests: { range?: string; ifRange?: string; auth?: string; url: string }[] = [];
let api: Server;
let store: Server;
let url: string;

function storeHandle(req: IncomingMessage, res: ServerResponse): void {
  const n = storeRequests.length;
  storeRequests.push({ url: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
  const b = plan(n);
  if (b === 'expired') {
    res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    return;
  }
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  const partial = m !== null && (ifRange === undefined || ifRange === STORE_ETAG);
  const start = partial ? Number(m[1]) : 0;
  const end = partial && m[2] !== '' ? Number(m[2]) : body.length - 1;
  res.writeHead(partial ? 206 : 200, {
    etag: STORE_ETAG,
    'content-length': String(end - start + 1),
    ...(partial ? { 'content-range': `bytes ${start}-${end}/${body.length}` } : {}),
  });
  const part = body.subarray(start, end + 1);
  if (b === 'cut') {
    res.write(part.subarray(0, 100_000));
    setTimeout(() => res.socket?.destroy(), 20);
    return;
  }
  res.end(part);
}

beforeAll(async () => {
  store = createServer(storeHandle);
  await new Promise<void>((r) => store.listen(0, '127.0.0.1', r));
  const storeUrl = `http://127.0.0.1:${(store.address() as AddressInfo).port}`;
  api = createServer((_req, res) => {
    apiHits++;
    // Each answer a fresh "presigned" URL, as the server's bundle route gives.
    res.writeHead(302, { location: `${storeUrl}/bucket/bundles/${sha256}?X-Amz-Signature=${apiHits}`, 'cache-control': 'no-store' }).end();
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1/bundles/${sha256}`;
});
afterAll(async () => {
  for (const s of [api, store]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});
beforeEach(() => {
  plan = () => 'ok';
  apiHits = 0;
  storeRequests = [];
});

const fast = (attempt: number, err: unknown): number | null => (retryDelay(attempt, err) === null ? null : 0);

function options(): HttpSourceOptions {
  return { offset: 0, sha256, size: body.length, stallMs: 5000, budget: { used: 0, limit: 20 }, delay: fast, headers: { authorization: 'Bearer device-token' } };
}

describe('bundle downloads across a redirect to an object store', { timeout: 30_000 }, () => {
  it('whole download: a cut resumes with Range, a 403 is asked again at the server, no token or If-Range at the store', async () => {
    plan = (n) => (n === 0 ? 'cut' : n === 1 ? 'expired' : 'ok');
    const o = options();
    const src = await openHttpSource(url, o);
    const parts: Buffer[] = [];
    for await (const c of src.chunks) parts.push(c);
    expect(Buffer.concat(parts).equals(body)).toBe(true);
    expect(storeRequests.map((r) => r.range)).toEqual([undefined, 'bytes=100000-', 'bytes=100000-']);
    expect(storeRequests.every((r) => r.auth === undefined && r.ifRange === undefined)).toBe(true);
    // Every attempt went through the server and got its own URL.
    expect(apiHits).toBe(3);
    expect(new Set(storeRequests.map((r) => r.url)).size).toBe(3);
    expect(o.budget.used).toBe(2);
  });

  it('delta ranges: single-range 206s from the store, its ETag accepted, a 403 retried', async () => {
    plan = (n) => (n === 1 ? 'expired' : 'ok');
    const reader = new HttpRangeReader(url, options());
    const got: Buffer[] = [];
    for (const [a, b] of [[1000, 5000], [300_000, 450_000]] as const) {
      const parts: Buffer[] = [];
      for await (const c of reader.read(a, b)) parts.push(c);
      got.push(Buffer.concat(parts));
    }
    expect(got[0]!.equals(body.subarray(1000, 5000))).toBe(true);
    expect(got[1]!.equals(body.subarray(300_000, 450_000))).toBe(true);
    expect(storeRequests.map((r) => r.range)).toEqual(['bytes=1000-4999', 'bytes=300000-449999', 'bytes=300000-449999']);
    expect(storeRequests.every((r) => r.auth === undefined && r.ifRange === undefined)).toBe(true);
  });
});
