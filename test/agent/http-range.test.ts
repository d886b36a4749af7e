// A delta install's ranges over HTTP (agent/delta/http-range.ts) against node's http server on
// 127.0.0.1: the ranges of an install share one kept connection, the bytes are lent from one
// ring, a cut mid-range resumes from the first byte not received over a new connection, a
// body longer than asked is refused, and a range lent while another is out gets its own ring.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HttpRangeReader } from '../../agent/delta/http-range.js';
import { retryDelay } from '../../agent/download/retry.js';
import { isOtaError } from '../../shared/errors.js';
import { pseudoRandom } from './helpers/bundles.js';

const body = pseudoRandom(3 << 20, 7);
let server: Server;
let url: string;
let connections = 0;
/** What request n does: answer, cut after some bytes, or send more than asked. */
let plan: (n: number) => { cut?: number; extra?: boolean } = () => ({});
let requests: string[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  const b = plan(requests.length);
  requests.push(req.headers.range ?? '');
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!m) {
    res.writeHead(400).end();
    return;
  }
  const [a, z] = [Number(m[1]), Number(m[2])];
  const part = body.subarray(a, z + 1 + (b.extra ? 10 : 0));
  res.writeHead(206, { 'content-range': `bytes ${a}-${z}/${body.length}`, 'content-length': String(part.length) });
  if (b.cut !== undefined) {
    res.write(part.subarray(0, b.cut));
    setTimeout(() => res.socket?.destroy(), 20);
    return;
  }
  res.end(part);
}

beforeAll(async () => {
  server = createServer(handle);
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b.otab`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  plan = () => ({});
  requests = [];
  connections = 0;
});

const reader = (): HttpRangeReader => new HttpRangeReader(url, { stallMs: 5000, budget: { used: 0, limit: 5 }, delay: (attempt, e) => (retryDelay(attempt, e) === null ? null : 10) });

async function lent(r: HttpRangeReader, a: number, b: number): Promise<{ bytes: Buffer; buffers: Set<ArrayBufferLike> }> {
  const parts: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  for await (const c of r.lend(a, b)) {
    buffers.add(c.buffer);
    parts.push(Buffer.from(c));
  }
  return { bytes: Buffer.concat(parts), buffers };
}

describe('HttpRangeReader', { timeout: 30_000 }, () => {
  it("sends an install's ranges over one kept connection, lent from one ring", async () => {
    const r = reader();
    try {
      const all = new Set<ArrayBufferLike>();
      for (const [a, b] of [
        [0, 100],
        [5000, (2 << 20) + 5000],
        [(3 << 20) - 7, 3 << 20],
      ] as const) {
        const got = await lent(r, a, b);
        expect(got.bytes.equals(body.subarray(a, b))).toBe(true);
        for (const x of got.buffers) all.add(x);
      }
      expect(all.size).toBe(1);
      expect(connections).toBe(1);
      expect(r.stats).toEqual({ requests: 3, bytes: 100 + (2 << 20) + 7 });
    } finally {
      r.close();
    }
  });

  it('resumes a cut range from the first byte not received, on a new connection', async () => {
    plan = (n) => (n === 0 ? { cut: 300_000 } : {});
    const r = reader();
    try {
      const got = await lent(r, 1000, 1_001_000);
      expect(got.bytes.equals(body.subarray(1000, 1_001_000))).toBe(true);
      expect(requests).toEqual(['bytes=1000-1000999', `bytes=${1000 + 300_000}-1000999`]);
      expect(r.stats.bytes).toBe(1_000_000);
    } finally {
      r.close();
    }
  });

  it('refuses a body longer than asked as DELTA_RANGE_MISMATCH, and is not retried', async () => {
    plan = () => ({ extra: true });
    const r = reader();
    try {
      const e = await lent(r, 0, 1000).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isOtaError(e, 'DELTA_RANGE_MISMATCH')).toBe(true);
      expect(requests).toHaveLength(1);
    } finally {
      r.close();
    }
  });

  it('gives a range lent while another is out a ring of its own', async () => {
    const r = reader();
    try {
      const outer = r.lend(0, 2 << 20)[Symbol.asyncIterator]();
      const first = (await outer.next()).value as Buffer;
      const copy = Buffer.from(first);
      const inner = await lent(r, 100_000, 200_000);
      expect(inner.bytes.equals(body.subarray(100_000, 200_000))).toBe(true);
      expect(inner.buffers.has(first.buffer)).toBe(false);
      expect(first.equals(copy)).toBe(true);
      await outer.return(undefined);
      // read() hands out copies.
      const parts: Buffer[] = [];
      for await (const c of r.read(10, 70_000)) parts.push(c);
      expect(Buffer.concat(parts).equals(body.subarray(10, 70_000))).toBe(true);
    } finally {
      r.close();
    }
  });
});
