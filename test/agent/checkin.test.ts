// The check-in client against a local HTTP server that serves crafted envelopes signed with
// shared/signing: a verified answer is believed; a replayed one (wrong nonce), an expired
// one, one signed by another key, one for another device, a tampered or malformed one are
// refused. In a session, a refused answer is a history event and nothing else happens; the
// report sender keeps what the server cannot take yet and drops what it never will.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bootUntilUp } from '../../scripts/sim/simulator.js';
import { checkIn, checkinState } from '../../agent/client/checkin.js';
import { requireConnection } from '../../agent/client/connection.js';
import { ReportSender } from '../../agent/client/reports.js';
import { ServerSession } from '../../agent/client/session.js';
import { isOtaError } from '../../shared/errors.js';
import { signAnswer, type CheckinAnswer, type CheckinRequest, type SignedEnvelope } from '../../shared/protocol.js';
import { generateSigningKey, keyringFromArmored, readPrivateKey, type Keyring } from '../../shared/signing.js';
import { withDev, logSink } from './helpers/agent-inproc.js';
import { makeRig, type Rig } from './helpers/rig.js';

type Reply = { status: number; body: unknown };
let onCheckin: (req: CheckinRequest, device: string) => Promise<Reply> = async () => ({ status: 500, body: {} });
let onReport: (body: Record<string, unknown>) => Reply = () => ({ status: 200, body: {} });
let received: Record<string, unknown>[] = [];
let server: Server;
let url: string;
let serverKey: PrivateKey;
let otherKey: PrivateKey;
let keyring: Keyring;
let serverPub: string;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return JSON.parse(Buffer.concat(parts).toString('utf8'));
}

function send(res: ServerResponse, r: Reply): void {
  res.writeHead(r.status, { 'content-type': 'application/json' }).end(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
}

beforeAll(async () => {
  const k = await generateSigningKey('server <server@example.com>');
  serverKey = await readPrivateKey(Buffer.from(k.privateKey), 'server');
  serverPub = k.publicKey;
  keyring = await keyringFromArmored([k.publicKey]);
  const o = await generateSigningKey('impostor <impostor@example.com>');
  otherKey = await readPrivateKey(Buffer.from(o.privateKey), 'impostor');
  server = createServer((req, res) => {
    void (async () => {
      const body = (await readJson(req)) as Record<string, unknown>;
      const m = /^\/v1\/devices\/([^/]+)\/(checkin|reports)$/.exec(req.url ?? '');
      if (m?.[2] === 'checkin') send(res, await onCheckin(body as unknown as CheckinRequest, decodeURIComponent(m[1]!)));
      else if (m?.[2] === 'reports') {
        const r = onReport(body);
        if (r.status === 200) received.push(body);
        send(res, r);
      } else send(res, { status: 404, body: { error: 'ROUTE_NOT_FOUND', message: 'no' } });
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = [];
  onReport = () => ({ status: 200, body: {} });
});

function answer(req: CheckinRequest, device: string, over: Partial<CheckinAnswer> = {}): CheckinAnswer {
  const now = Date.now();
  return { device, nonce: req.nonce, issued: new Date(now).toISOString(), expires: new Date(now + 60_000).toISOString(), directive: { type: 'none' }, pollInterval: 30, ...over };
}

const ok = (env: SignedEnvelope): Reply => ({ status: 200, body: env });
const state = checkinState({ slot: 'A', version: '1.0.0' });
const opts = { timeoutMs: 5000 };

async function refusal(): Promise<string> {
  const r = await checkIn({ url, token: 't' }, 'gw-1', keyring, state, opts);
  if (r.ok) return 'verified';
  return r.refused.code;
}

async function thrown(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return isOtaError(err) ? err.code : String(err);
  }
  return 'no error';
}

describe('checkIn', () => {
  it('sends a fresh nonce and the device state, and believes a verified answer', async () => {
    const seen: CheckinRequest[] = [];
    onCheckin = async (req, device) => {
      seen.push(req);
      return ok(await signAnswer(answer(req, device, { directive: { type: 'rollback', id: 'rb-1' } }), serverKey));
    };
    const r = await checkIn({ url, token: 't' }, 'gw-1', keyring, state, opts);
    expect(r.ok && r.answer.directive).toEqual({ type: 'rollback', id: 'rb-1' });
    await checkIn({ url, token: 't' }, 'gw-1', keyring, state, opts);
    expect(seen[0]).toMatchObject({ slot: 'A', version: '1.0.0', state: 'idle' });
    expect(seen[0]!.nonce).toMatch(/^[0-9a-f]{64}$/);
    expect(seen[1]!.nonce).not.toBe(seen[0]!.nonce);
  });

  it('refuses a replayed answer (the nonce of an earlier check-in)', async () => {
    let first: SignedEnvelope | undefined;
    onCheckin = async (req, device) => {
      first ??= await signAnswer(answer(req, device), serverKey);
      return ok(first);
    };
    expect(await refusal()).toBe('verified');
    expect(await refusal()).toBe('ANSWER_WRONG_NONCE');
  });

  it('refuses an expired answer, one signed by another key, one for another device', async () => {
    onCheckin = async (req, device) => ok(await signAnswer(answer(req, device, { expires: new Date(Date.now() - 1000).toISOString() }), serverKey));
    expect(await refusal()).toBe('ANSWER_EXPIRED');
    onCheckin = async (req, device) => ok(await signAnswer(answer(req, device), otherKey));
    expect(await refusal()).toBe('SIGNATURE_UNKNOWN_KEY');
    onCheckin = async (req) => ok(await signAnswer(answer(req, 'gw-2'), serverKey));
    expect(await refusal()).toBe('ANSWER_WRONG_DEVICE');
  });

  it('refuses a tampered payload, a non-envelope and a directive outside the contract', async () => {
    onCheckin = async (req, device) => {
      const env = await signAnswer(answer(req, device), serverKey);
      const forged = answer(req, device, { directive: { type: 'rollback', id: 'forged' } });
      return ok({ ...env, payload: Buffer.from(JSON.stringify(forged)).toString('base64') });
    };
    expect(await refusal()).toBe('SIGNATURE_BAD');
    onCheckin = async () => ({ status: 200, body: { directive: { type: 'none' } } });
    expect(await refusal()).toBe('ANSWER_MALFORMED');
    onCheckin = async (req, device) => ok(await signAnswer(answer(req, device, { directive: { type: 'update' } as never }), serverKey));
    expect(await refusal()).toBe('ANSWER_MALFORMED');
    onCheckin = async (req, device) => ok(await signAnswer(answer(req, device, { directive: { type: 'reformat' } as never }), serverKey));
    expect(await refusal()).toBe('ANSWER_MALFORMED');
  });

  it('throws transport failures with a code that says whether to try again', async () => {
    onCheckin = async () => ({ status: 503, body: { error: 'SERVER_INTERNAL', message: 'busy' } });
    expect(await thrown(refusal())).toBe('SERVER_FAILED');
    onCheckin = async () => ({ status: 401, body: { error: 'AUTH_INVALID', message: 'unknown token' } });
    expect(await thrown(refusal())).toBe('SERVER_AUTH_FAILED');
    onCheckin = async () => ({ status: 200, body: 'not json' });
    expect(await thrown(refusal())).toBe('SERVER_BAD_ANSWER');
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await thrown(checkIn({ url: `http://127.0.0.1:${port}`, token: 't' }, 'gw-1', keyring, state, opts))).toBe('SERVER_UNREACHABLE');
  });
});

describe('a session on a device', { timeout: 60_000 }, () => {
  const rigs: Rig[] = [];
  afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

  async function device(): Promise<Rig> {
    const r = await makeRig();
    rigs.push(r);
    const pub = join(r.dir, 'server.pub');
    await writeFile(pub, serverPub);
    const config = JSON.parse(JSON.stringify(r.config)) as Record<string, unknown>;
    config.server = { url, token: 'device-token', serverKey: pub, pollIntervalSeconds: 1 };
    await writeFile(r.configPath, JSON.stringify(config));
    await bootUntilUp(r.dev);
    return r;
  }

  it('records a refused answer in the history and does nothing else', async () => {
    const r = await device();
    onCheckin = async (req, device) => ok(await signAnswer(answer(req, device, { nonce: 'ab'.repeat(32), directive: { type: 'rollback', id: 'rb-9' } }), serverKey));
    const { log, lines } = logSink();
    await withDev(r, async (dev) => {
      const rep = await new ServerSession(dev, requireConnection(dev.server), { log, resumeInFlight: true }).check();
      expect(rep.checkin?.ok).toBe(false);
      expect(rep.action).toBeUndefined();
      expect(dev.store.transactions()).toEqual([]);
      expect(dev.store.events().filter((e) => e.type === 'server').map((e) => e.reason)).toEqual(['answer-refused:ANSWER_WRONG_NONCE']);
    });
    expect(lines.join('\n')).toMatch(/check-in answer refused: ANSWER_WRONG_NONCE/);
  });

  it('records a directive it cannot follow (no committed slot to roll back to)', async () => {
    const r = await device();
    onCheckin = async (req, device) => ok(await signAnswer(answer(req, device, { directive: { type: 'rollback', id: 'rb-7' } }), serverKey));
    const { log } = logSink();
    await withDev(r, async (dev) => {
      const rep = await new ServerSession(dev, requireConnection(dev.server), { log, resumeInFlight: true }).check();
      expect(rep.action).toMatchObject({ type: 'rollback', id: 'rb-7', refused: { code: 'ROLLBACK_UNAVAILABLE' } });
      expect(dev.store.events().filter((e) => e.type === 'server').map((e) => e.reason)).toEqual(['directive-refused:ROLLBACK_UNAVAILABLE']);
    });
  });

  it('sends reports oldest first, keeps them while the server fails, drops one it refuses', async () => {
    const r = await device();
    await withDev(r, async (dev) => {
      dev.store.write('a transaction with reports', (w) => {
        const tx = w.insert({ id: 'tx-1', kind: 'install', origin: 'server', version: '1.0.0', state: 'downloading', sourceSlot: 'A', targetSlot: 'B' });
        for (const n of [1, 2, 3]) w.report({ id: `r${n}`, transaction: tx.id, version: '1.0.0', state: 'downloading', at: new Date().toISOString() });
      });
      const { log } = logSink();
      const sender = new ReportSender({ url, token: 't' }, { store: dev.store, device: 'sim-1', slot: dev.booted, timeoutMs: 5000, log });
      onReport = () => ({ status: 503, body: { error: 'SERVER_INTERNAL', message: 'down' } });
      expect(await sender.flush()).toMatchObject({ sent: 0, pending: 3, error: { code: 'SERVER_FAILED' } });
      onReport = (b) => (b.id === 'r2' ? { status: 400, body: { error: 'REQUEST_INVALID', message: 'bad' } } : { status: 200, body: {} });
      expect(await sender.flush()).toEqual({ sent: 2, dropped: 1, pending: 0 });
      expect(received.map((b) => b.id)).toEqual(['r1', 'r3']);
      expect(dev.store.pendingReports()).toEqual([]);
      expect(dev.store.events({ transactionId: 'tx-1' }).map((e) => e.reason)).toContain('report-refused');
    });
  });
});
