/**
 * GET /v1/events over real sockets: a stream opens with `ready`, names the topics a change
 * moves, sees changes made through another server instance over the same database (the events
 * come from the database, not from the instance that made the change), catches up after a
 * reconnect with Last-Event-ID, and ends when the server closes.
 */
import type { FastifyInstance } from 'fastify';
import { get, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../server/app.js';
import { EventHub } from '../../../server/events/hub.js';
import { keyringFromArmored } from '../../../shared/signing.js';
import { bearer, enroll, releaseKey, testConfig, testServer, type TestServer } from '../helpers.js';

let s: TestServer;
let other: FastifyInstance;
let urlA: string;
let urlB: string;

beforeAll(async () => {
  const key = await releaseKey();
  s = await testServer([key]);
  // A second instance over the same data directory: the scale-out set-up, with SQLite's WAL.
  other = await buildApp({ config: testConfig(s.data), keyring: await keyringFromArmored([key.publicKey]), logger: false });
  urlA = await s.app.listen({ host: '127.0.0.1', port: 0 });
  urlB = await other.listen({ host: '127.0.0.1', port: 0 });
  await enroll(s, 'gw-1');
}, 60_000);

afterAll(async () => {
  await other?.close();
  await s?.close();
});

interface Event {
  event: string;
  id?: string;
  data: string;
}

/** An open stream (node:http, so that closing it closes its socket): its events as they come. */
async function stream(url: string, token: string, lastId?: string) {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = get(`${url}/v1/events`, { headers: { ...bearer(token), ...(lastId ? { 'last-event-id': lastId } : {}) } }, resolve);
    req.on('error', reject);
  });
  res.setEncoding('utf8');
  let buf = '';
  const queue: Event[] = [];
  let ended = false;
  res.on('data', (chunk: string) => {
    buf += chunk;
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      const e: Event = { event: 'message', data: '' };
      let any = false;
      for (const line of block.split('\n')) {
        const m = /^([a-z]+): ?(.*)$/.exec(line);
        if (!m) continue;
        if (m[1] === 'event') e.event = m[2]!;
        else if (m[1] === 'id') e.id = m[2]!;
        else if (m[1] === 'data') e.data = m[2]!;
        else continue;
        any = true;
      }
      if (any) queue.push(e);
    }
  });
  res.on('close', () => void (ended = true));
  return {
    res,
    /** The next event that `pred` accepts (earlier ones are dropped). */
    async next(pred: (e: Event) => boolean = () => true, ms = 10_000): Promise<Event> {
      const until = Date.now() + ms;
      for (;;) {
        const i = queue.findIndex(pred);
        if (i >= 0) return queue.splice(0, i + 1)[i]!;
        if (ended) throw new Error('the stream ended');
        if (Date.now() > until) throw new Error(`no such event within ${ms} ms; got ${JSON.stringify(queue)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    get ended() {
      return ended;
    },
    async close() {
      res.destroy();
      await new Promise((r) => setTimeout(r, 20));
    },
  };
}

const topics = (e: Event): string[] => (JSON.parse(e.data) as { topics: string[] }).topics;

describe('GET /v1/events', () => {
  it('is for ops and technicians only', async () => {
    expect((await fetch(`${urlA}/v1/events`)).status).toBe(401);
    const refused = await fetch(`${urlA}/v1/events`, { headers: bearer(s.tokens.enroll) });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: 'AUTH_FORBIDDEN' });
  });

  it('opens with ready, then names the topics a change through this instance moves', async () => {
    const st = await stream(urlA, s.tokens.technician);
    expect(st.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const ready = await st.next();
    expect(ready).toMatchObject({ event: 'ready' });
    expect(ready.id).toMatch(/^[A-Za-z0-9_-]+$/);
    const put = await fetch(`${urlA}/v1/devices/gw-1/tags/pilot`, { method: 'PUT', headers: bearer(s.tokens.ops) });
    expect(put.status).toBe(200);
    // The person's change is looked for at once (a nudge), well before the next poll.
    const e = await st.next((x) => x.event === 'change', 900);
    expect(topics(e)).toEqual(['devices']);
    expect(e.id).not.toBe(ready.id);
    await st.close();
  });

  it('sees changes made through another instance over the same database', async () => {
    const st = await stream(urlA, s.tokens.ops);
    await st.next((e) => e.event === 'ready');
    // Enrolled through instance B: instance A learns it from the database's change cursor.
    const res = await fetch(`${urlB}/v1/devices/enroll`, { method: 'POST', headers: { ...bearer(s.tokens.enroll), 'content-type': 'application/json' }, body: JSON.stringify({ id: 'gw-2', compatible: 'x86-gw' }) });
    expect(res.status).toBe(201);
    expect(topics(await st.next((e) => e.event === 'change', 5000))).toContain('devices');
    const rb = await fetch(`${urlB}/v1/devices/gw-2/rollback`, { method: 'POST', headers: { ...bearer(s.tokens.technician), 'content-type': 'application/json' }, body: JSON.stringify({ note: 'from B' }) });
    expect(rb.status).toBe(202);
    expect(topics(await st.next((e) => e.event === 'change', 5000))).toEqual(['rollbacks']);
    await st.close();
  });

  it('catches a reconnecting browser up with Last-Event-ID', async () => {
    const first = await stream(urlA, s.tokens.ops);
    const ready = await first.next();
    await first.close();
    await fetch(`${urlB}/v1/devices/gw-1/tags/pilot`, { method: 'DELETE', headers: bearer(s.tokens.ops) });
    const again = await stream(urlA, s.tokens.ops, ready.id);
    const e = await again.next();
    expect(e.event).toBe('change');
    expect(topics(e)).toEqual(['devices']);
    // With the current id, nothing moved: ready.
    const current = await stream(urlA, s.tokens.ops, e.id);
    expect((await current.next()).event).toBe('ready');
    await again.close();
    await current.close();
  });

  it('ends the streams when the server closes', async () => {
    const st = await stream(urlB, s.tokens.ops);
    await st.next();
    expect(other.events.size).toBe(1);
    const closing = other.close();
    await expect.poll(() => st.ended, { timeout: 5000 }).toBe(true);
    await closing;
  });
});

describe('EventHub', () => {
  it('reads the cursor only while a stream is open', async () => {
    let n = 0;
    const hub = new EventHub(() => ({ reports: String(n), rollouts: '', devices: '', rollbacks: '', releases: '' }), { pollMs: 20, heartbeatMs: 1000, nudgeMs: 5 });
    const got: string[] = [];
    const off = await hub.subscribe({ write: (t) => void got.push(t), end: () => undefined }, null);
    n++;
    await expect.poll(() => got.some((t) => t.includes('event: change') && t.includes('"reports"'))).toBe(true);
    off();
    const reads = hub.reads;
    await new Promise((r) => setTimeout(r, 100));
    hub.nudge();
    await new Promise((r) => setTimeout(r, 50));
    expect(hub.reads).toBe(reads);
    hub.close();
  });
});

