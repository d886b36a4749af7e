import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../scripts/net/fault-proxy.js';

const body = Buffer.alloc(300_000, 7);
let upstream: Server;
let proxy: FaultProxy;

function fetchAll(url: string): Promise<{ status: number; bytes: number; error: boolean }> {
  return new Promise((resolve) => {
    get(url, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, error: false }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, error: true }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes, error: true }));
    }).on('error', () => resolve({ status: 0, bytes: 0, error: true }));
  });
}

beforeAll(async () => {
  upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  proxy = await startFaultProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
});
afterAll(async () => {
  await proxy.close();
  await new Promise((r) => upstream.close(r));
});

describe('fault proxy', () => {
  it('passes, cuts at an offset, stalls, slows and injects errors, counting body bytes', async () => {
    proxy.setPlan(({ n }) => [{ kind: 'pass' as const }, { kind: 'cut' as const, afterBytes: 100_000 }, { kind: 'error' as const, status: 503 }, { kind: 'stall' as const, afterBytes: 1000, ms: 300 }, { kind: 'slow' as const, bytesPerSecond: 2_000_000 }][n] ?? { kind: 'pass' });
    expect(await fetchAll(`${proxy.url}/b`)).toEqual({ status: 200, bytes: body.length, error: false });
    const cut = await fetchAll(`${proxy.url}/b`);
    expect(cut.error).toBe(true);
    expect(cut.bytes).toBe(100_000);
    expect((await fetchAll(`${proxy.url}/b`)).status).toBe(503);
    expect(await fetchAll(`${proxy.url}/b`)).toEqual({ status: 200, bytes: body.length, error: false });
    expect(await fetchAll(`${proxy.url}/b`)).toEqual({ status: 200, bytes: body.length, error: false });
    expect(proxy.bytesSent.get('/b')).toBe(4 * body.length + 100_000 - body.length);
    expect(proxy.log.map((l) => l.fault)).toEqual(['pass', 'cut', 'error', 'stall', 'slow']);
  });
});
