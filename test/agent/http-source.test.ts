// The resilient HTTP download against a real local server that misbehaves on purpose: cut
// connections resume with Range from exactly the bytes received (nothing is fetched twice),
// stalls and 5xx are retried, a changed or oversize bundle and a refusal are not, the retry
// budget ends the download, and aborting stops it.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ByteRing, openHttpSource, type HttpSourceOptions, type RetryEvent } from '../../agent/download/http-source.js';
import { retryDelay } from '../../agent/download/retry.js';
import { isOtaError } from '../../shared/errors.js';
import { pseudoRandom } from './helpers/bundles.js';

const body = pseudoRandom(700_000, 42);
const sha256 = createHash('sha256').update(body).digest('hex');
const etag = `"${sha256}"`;

/** What the server does with request n (0-based) of a test. */
type Behaviour =
  | { kind: 'ok' }
  | { kind: 'cut'; after: number }
  | { kind: 'stall'; after: number }
  | { kind: 'status'; status: number }
  | { kind: 'ignore-range' }
  | { kind: 'etag'; etag: string };

let plan: (n: number) => Behaviour = () => ({ kind: 'ok' });
let requests: { range?: string; ifRange?: string; auth?: string; sent: number }[] = [];
let server: Server;
let url: string;
const open: ServerResponse[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  const b = plan(requests.length);
  const entry: (typeof requests)[number] = { sent: 0, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) };
  requests.push(entry);
  if (b.kind === 'status') {
    res.writeHead(b.status, { 'content-type': 'application/json' }).end('{"error":"X","message":"injected"}');
    return;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const partial = m !== null && b.kind !== 'ignore-range' && (req.headers['if-range'] === undefined || req.headers['if-range'] === etag);
  const start = partial ? Number(m[1]) : 0;
  const total = body.length;
  const part = body.subarray(start);
  res.writeHead(partial ? 206 : 200, {
    etag: b.kind === 'etag' ? b.etag : etag,
    'content-length': String(total - start),
    ...(partial ? { 'content-range': `bytes ${start}-${total - 1}/${total}` } : {}),
  });
  if (b.kind === 'cut' || b.kind === 'stall') {
    const first = part.subarray(0, b.after);
    entry.sent = first.length;
    res.write(first);
    if (b.kind === 'cut') setTimeout(() => res.socket?.destroy(), 20);
    else open.push(res);
    return;
  }
  entry.sent = part.length;
  res.end(part);
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle`;
});
afterAll(async () => {
  for (const r of open) r.socket?.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  requests = [];
  plan = () => ({ kind: 'ok' });
});

/** The real policy's decisions without its waits. */
const fast = (attempt: number, err: unknown): number | null => (retryDelay(attempt, err) === null ? null : 0);

function options(over: Partial<HttpSourceOptions> = {}): HttpSourceOptions & { retries: RetryEvent[] } {
  const retries: RetryEvent[] = [];
  return { offset: 0, sha256, size: body.length, stallMs: 5000, budget: { used: 0, limit: 20 }, delay: fast, onRetry: (e) => retries.push(e), retries, ...over };
}

/** Every byte, in order: each chunk is lent (its memory is reused after the next), so it is copied. */
async function readAll(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return isOtaError(err) ? err.code : String(err);
  }
  return 'no error';
}

describe('openHttpSource', { timeout: 30_000 }, () => {
  it('resumes cut connections from exactly the bytes received, sending If-Range with the ETag', async () => {
    const cuts = [100_000, 150_001, 33_333];
    plan = (n) => (n < cuts.length ? { kind: 'cut', after: cuts[n]! } : { kind: 'ok' });
    const o = options({ headers: { authorization: 'Bearer t' } });
    const src = await openHttpSource(url, o);
    expect(src.total).toBe(body.length);
    expect((await readAll(src.chunks)).equals(body)).toBe(true);
    let at = 0;
    expect(requests.map((r) => r.range)).toEqual([undefined, ...cuts.map((c) => `bytes=${(at += c)}-`)]);
    expect(requests.slice(1).every((r) => r.ifRange === etag && r.auth === 'Bearer t')).toBe(true);
    // Nothing fetched twice: the server sent the bundle exactly once in all.
    expect(requests.reduce((n, r) => n + r.sent, 0)).toBe(body.length);
    expect(o.retries.map((r) => r.offset)).toEqual(requests.slice(1).map((r) => Number(/\d+/.exec(r.range!)![0])));
    expect(o.budget.used).toBe(3);
  });

  it('starts at an offset (a durable resume point) and retries 5xx and 429 answers', async () => {
    plan = (n) => (n === 0 ? { kind: 'status', status: 503 } : n === 1 ? { kind: 'status', status: 429 } : { kind: 'ok' });
    const o = options({ offset: 500_000 });
    const src = await openHttpSource(url, o);
    expect((await readAll(src.chunks)).equals(body.subarray(500_000))).toBe(true);
    expect(requests.map((r) => r.range)).toEqual(['bytes=500000-', 'bytes=500000-', 'bytes=500000-']);
    expect(o.retries.map((r) => r.error.code)).toEqual(['DOWNLOAD_FAILED', 'DOWNLOAD_FAILED']);
  });

  it('counts a stall as a network error and resumes after it', async () => {
    plan = (n) => (n === 0 ? { kind: 'stall', after: 200_000 } : { kind: 'ok' });
    const o = options({ stallMs: 300 });
    const src = await openHttpSource(url, o);
    expect((await readAll(src.chunks)).equals(body)).toBe(true);
    expect(o.retries.map((r) => [r.error.code, r.offset])).toEqual([['DOWNLOAD_STALLED', 200_000]]);
    expect(requests[1]!.range).toBe('bytes=200000-');
  });

  it('skips what it has when a server ignores Range', async () => {
    plan = (n) => (n === 0 ? { kind: 'cut', after: 300_000 } : { kind: 'ignore-range' });
    const src = await openHttpSource(url, options({ sha256: undefined }));
    expect((await readAll(src.chunks)).equals(body)).toBe(true);
  });

  it('refuses a bundle whose ETag changed, without retrying', async () => {
    plan = (n) => (n === 0 ? { kind: 'cut', after: 100_000 } : { kind: 'etag', etag: `"${'0'.repeat(64)}"` });
    const o = options();
    const src = await openHttpSource(url, o);
    expect(await failure(readAll(src.chunks))).toBe('BUNDLE_CHANGED');
    expect(requests).toHaveLength(2);
    expect(await failure(openHttpSource(url, options({ sha256: 'f'.repeat(64) })))).toBe('BUNDLE_CHANGED');
  });

  it('refuses a bundle larger than announced before reading it, and a 404 at once', async () => {
    expect(await failure(openHttpSource(url, options({ size: body.length - 1 })))).toBe('BUNDLE_TOO_LARGE');
    plan = () => ({ kind: 'status', status: 404 });
    const o = options();
    expect(await failure(openHttpSource(url, o))).toBe('DOWNLOAD_REFUSED');
    expect(o.retries).toEqual([]);
  });

  it('fails with DOWNLOAD_RETRIES_EXHAUSTED once the budget is used, counting what the transaction used before', async () => {
    plan = () => ({ kind: 'status', status: 502 });
    const o = options({ budget: { used: 7, limit: 9 } });
    expect(await failure(openHttpSource(url, o))).toBe('DOWNLOAD_RETRIES_EXHAUSTED');
    expect(requests).toHaveLength(3);
    expect(o.retries.map((r) => r.retry)).toEqual([8, 9]);
  });

  it('starts the backoff over after bytes arrived', async () => {
    plan = (n) => (n < 3 ? { kind: 'cut', after: 1000 } : { kind: 'ok' });
    const o = options();
    await readAll((await openHttpSource(url, o)).chunks);
    expect(o.retries.map((r) => r.attempt)).toEqual([1, 1, 1]);
    plan = (n) => (n < 2 ? { kind: 'status', status: 500 } : { kind: 'ok' });
    requests = [];
    const p = options();
    await readAll((await openHttpSource(url, p)).chunks);
    expect(p.retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('stops with AGENT_STOPPED when aborted, waiting or reading', async () => {
    const stop = new AbortController();
    plan = () => ({ kind: 'status', status: 503 });
    const waiting = openHttpSource(url, options({ signal: stop.signal, delay: (a, e) => (retryDelay(a, e) === null ? null : 60_000) }));
    setTimeout(() => stop.abort(), 100);
    expect(await failure(waiting)).toBe('AGENT_STOPPED');

    const stop2 = new AbortController();
    plan = () => ({ kind: 'stall', after: 1000 });
    const src = await openHttpSource(url, options({ signal: stop2.signal }));
    setTimeout(() => stop2.abort(), 100);
    expect(await failure(readAll(src.chunks))).toBe('AGENT_STOPPED');
  });
});

describe('ByteRing', () => {
  it('hands out the bytes in order across its end, a lent view kept until the next take', () => {
    const ring = new ByteRing();
    const data = pseudoRandom(5 << 20, 7);
    const out: Buffer[] = [];
    let put = 0;
    let lent: Buffer | undefined;
    let lentCopy: Buffer | undefined;
    // Write ahead of the reader by up to 1.5 MiB in odd-sized pieces, so the ring wraps.
    while (out.reduce((n, b) => n + b.length, 0) < data.length) {
      while (put < data.length && ring.size < 1.5 * (1 << 20)) {
        const n = Math.min(65_521, data.length - put);
        ring.push(data.subarray(put, put + n));
        put += n;
        // What was lent is untouched by what came in after it.
        if (lent) expect(lent.equals(lentCopy!)).toBe(true);
      }
      // Taking gives the view lent before back: with nothing else held there is nothing to lend.
      lent = ring.take();
      if (!lent) continue;
      lentCopy = Buffer.from(lent);
      out.push(lentCopy);
    }
    expect(Buffer.concat(out).equals(data)).toBe(true);
    expect(ring.size).toBe(out.at(-1)!.length);
    ring.release();
    expect(ring.size).toBe(0);
  });

  it('grows when more arrives than it holds, the lent view still valid', () => {
    const ring = new ByteRing();
    const a = pseudoRandom(1 << 20, 1);
    const b = pseudoRandom(3 << 20, 2);
    ring.push(a);
    const view = ring.take()!;
    ring.push(b);
    expect(view.equals(a.subarray(0, view.length))).toBe(true);
    const parts: Buffer[] = [Buffer.from(view)];
    for (let c = ring.take(); c; c = ring.take()) parts.push(Buffer.from(c));
    expect(Buffer.concat(parts).equals(Buffer.concat([a, b]))).toBe(true);
  });
});
