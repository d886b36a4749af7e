// Refused check-in answers with real processes: a small proxy between a running device and the
// real server rewrites the server's signed answers. A replayed answer (an earlier check-in's
// nonce), an expired answer (re-signed with the server's own key) and an answer signed by
// another key are each refused, logged in the device's history, and change nothing: the
// device stays on its release although the server offers an update. Once the answers are
// genuine again, the update goes through.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAnswer, type CheckinAnswer, type SignedEnvelope } from '../../shared/protocol.js';
import { generateSigningKey, loadPrivateKey, readPrivateKey } from '../../shared/signing.js';
import { treeBundle, writeTree } from '../agent/helpers/bundles.js';
import { deviceView, enrolledDevice, publish, startStack, waitDevice, waitFor, type Stack } from './server-helpers.js';

type Mode = 'pass' | 'replay' | 'expired' | 'other-key';

let stack: Stack;
let proxy: Server;
let proxyUrl: string;
let mode: Mode = 'pass';
let captured: Buffer | undefined;
let serverKey: PrivateKey;
let otherKey: PrivateKey;

async function body(stream: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The server's answer as the device will see it in the current mode. */
async function rewrite(answer: Buffer): Promise<Buffer> {
  const env = JSON.parse(answer.toString('utf8')) as SignedEnvelope;
  const signed = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as CheckinAnswer;
  if (mode === 'replay') {
    captured ??= answer;
    return captured;
  }
  if (mode === 'expired') {
    const past = Date.now() - 60_000;
    const stale = { ...signed, issued: new Date(past - 300_000).toISOString(), expires: new Date(past).toISOString() };
    return Buffer.from(JSON.stringify(await signAnswer(stale, serverKey)));
  }
  if (mode === 'other-key') return Buffer.from(JSON.stringify(await signAnswer(signed, otherKey)));
  return answer;
}

function forward(req: IncomingMessage, res: ServerResponse): void {
  void (async () => {
    const target = new URL(stack.server.url);
    const input = await body(req);
    // The Host header stays the proxy's: the server builds bundle URLs from it, and the device
    // sends its token to its own server's origin only.
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers });
    up.on('error', () => res.destroy());
    up.on('response', (answer) => {
      void (async () => {
        let out = await body(answer);
        if (/\/checkin$/.test(req.url ?? '') && answer.statusCode === 200) out = await rewrite(out);
        res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/json', 'content-length': String(out.length) });
        res.end(out);
      })();
    });
    up.end(input);
  })();
}

beforeAll(async () => {
  stack = await startStack();
  serverKey = await loadPrivateKey(join(stack.data, 'server-key.asc'));
  const other = await generateSigningKey('impostor <impostor@example.com>');
  otherKey = await readPrivateKey(Buffer.from(other.privateKey), 'impostor');
  proxy = createServer(forward);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await stack?.stop();
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
});

interface History {
  transactions: unknown[];
  events: { type: string; reason: string | null; details: { error?: string } | null }[];
}

describe('check-in answers that must be refused', { timeout: 600_000 }, () => {
  it('refuses a replayed, an expired and a foreign-signed answer, then follows a genuine one', async () => {
    mode = 'replay';
    const d = await enrolledDevice(stack, { id: 'gw-answers', url: proxyUrl });
    // The first answer (nothing to do) goes through and is kept: the one replayed later.
    await waitFor(stack, 'the first check-in', async () => captured);
    const healthy = await writeTree(join(stack.dir, 'tree'), { 'etc/healthy': 'yes\n', 'etc/os-release': 'VERSION=1.0.0\n' });
    await publish(stack, (await treeBundle(stack.dir, stack.key, healthy, { version: '1.0.0', type: 'archive' })).path);

    const refusals = async (code: string): Promise<History | undefined> => {
      const r = await d.agent(['history', '--json']);
      if (r.code !== 0) return undefined;
      const h = JSON.parse(r.stdout) as History;
      return h.events.filter((e) => e.type === 'server' && e.reason === `answer-refused:${code}`).length >= 2 ? h : undefined;
    };
    for (const [m, code] of [['replay', 'ANSWER_WRONG_NONCE'], ['expired', 'ANSWER_EXPIRED'], ['other-key', 'SIGNATURE_UNKNOWN_KEY']] as const) {
      mode = m;
      const h = await waitFor(stack, `two ${code} refusals`, () => refusals(code));
      // The server offered 1.0.0 all along; the device did nothing on an answer it refused.
      expect(h.transactions).toEqual([]);
    }
    const view = await deviceView(stack, d.id);
    expect(view.device.version).toBeNull();
    expect(view.reports).toEqual([]);
    const status = await d.status();
    expect(status.transaction).toBeNull();

    mode = 'pass';
    await waitDevice(stack, d.id, 'the update once answers are genuine', (v) => v.device.transaction === null && v.device.version === '1.0.0');
  });
});
