/**
 * A JSON body over maxJsonBody is answered 413 only after the server read and dropped the
 * rest of it (lingering close), so a client still sending reads the answer instead of meeting
 * a reset; the bounds in bytes and time keep a client from holding the server with it. Real
 * sockets: `inject` has no connection to reset.
 */
import { createServer, request, Agent, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainBody } from '../../server/http/drain.js';
import { bearer, enroll, releaseKey, testServer, type TestServer } from './helpers.js';

interface Answer {
  status: number;
  body: string;
  reused: boolean;
}

/** POSTs `body` in 64 KiB writes (chunked unless `length`) and reads the answer. */
function post(url: string, headers: Record<string, string>, body: Buffer, opts: { agent?: Agent; length?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: opts.agent, headers: { ...headers, ...(opts.length ? { 'content-length': String(body.length) } : {}) } }, (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), reused: req.reusedSocket }));
    });
    req.on('error', reject);
    let off = 0;
    const write = (): void => {
      while (off < body.length) {
        const more = req.write(body.subarray(off, off + 65_536));
        off += 65_536;
        if (!more) {
          req.once('drain', write);
          return;
        }
      }
      req.end();
    };
    write();
  });
}

describe('drainBody', () => {
  let server: Server;
  let url: string;
  const results: boolean[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      void drainBody(req, 1 << 20, 500).then((ended) => {
        results.push(ended);
        res.setHeader('connection', 'close');
        res.end(String(ended));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => new Promise<void>((r) => server.close(() => r())));

  it('reads a body to its end within the bounds', async () => {
    const a = await post(url, {}, Buffer.alloc(512 << 10, 0x20));
    expect(a).toMatchObject({ status: 200, body: 'true' });
  });

  it('gives up past its byte bound and past its time bound', async () => {
    results.length = 0;
    await post(url, {}, Buffer.alloc(4 << 20, 0x20)).catch(() => undefined);
    // A client that sends a little and then nothing.
    await new Promise<void>((resolve) => {
      const req = request(url, { method: 'POST', headers: { 'content-length': '1000' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(100));
    });
    expect(results).toEqual([false, false]);
  });
});

describe('a JSON body over maxJsonBody, over a real connection', () => {
  let s: TestServer;
  let base: string;
  let device: string;
  beforeAll(async () => {
    s = await testServer([await releaseKey()]);
    device = await enroll(s, 'dev-drain');
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => s?.close());

  it('is answered 413 REQUEST_TOO_LARGE, by length and chunked, and the connection goes on', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const headers = { ...bearer(device), 'content-type': 'application/json' };
    const huge = Buffer.from(`{"id":"r-1","note":"${'x'.repeat(2 << 20)}"}`);
    for (const length of [true, false]) {
      const a = await post(`${base}/v1/devices/dev-drain/reports`, headers, huge, { agent, length });
      expect(a.status).toBe(413);
      expect(JSON.parse(a.body)).toMatchObject({ error: 'REQUEST_TOO_LARGE' });
    }
    const next = await post(`${base}/v1/devices/dev-drain/checkin`, headers, Buffer.from(JSON.stringify({ nonce: 'ab'.repeat(32), slot: 'A', version: null, state: 'idle' })), { agent, length: true });
    expect(next.status).toBe(200);
    expect(next.reused).toBe(true);
    agent.destroy();
  });
});
