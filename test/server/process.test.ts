/**
 * The real server process: SIGKILL during an upload and at rest loses nothing committed and
 * exposes no partial bundle; Range downloads over real HTTP reassemble to the exact bundle;
 * answers verify with the key `ota-server key export` prints.
 */
import { randomInt } from 'node:crypto';
import { request } from 'node:http';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNonce, verifyAnswer } from '../../shared/protocol.js';
import { keyringFromArmored, type GeneratedKey } from '../../shared/signing.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { makeBundle, releaseKey, storageFiles, type BuiltBundle } from './helpers.js';
import { startServer, type ServerProcess } from './process-helpers.js';
import { ON_POSTGRES } from '../../scripts/fleet/test-database.js';

let dir: { dir: string; cleanup: () => Promise<void> };
let data: string;
let keyFile: string;
let key: GeneratedKey;
let server: ServerProcess | undefined;
let opsToken: string;
let b1: BuiltBundle;
let b2: BuiltBundle;

async function api(method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server!.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

async function uploadFile(path: string): Promise<Response> {
  return fetch(`${server!.url}/v1/releases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${opsToken}`, 'content-type': 'application/octet-stream' },
    body: await readFile(path),
  });
}

async function token(role: string): Promise<string> {
  const r = await runCli('server', ['token', 'create', '--role', role, '--data', data]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

/** Polls until `ok()` or 30 s. */
async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = await tempDir('otaab-server-proc-');
  data = join(dir.dir, 'data');
  key = await releaseKey();
  keyFile = join(dir.dir, 'ops.pub');
  await writeFile(keyFile, key.publicKey);
  b1 = await makeBundle(join(dir.dir, 'in'), key, { version: '1.0.0', payloadSize: 3 * 1024 * 1024 + 17 });
  b2 = await makeBundle(join(dir.dir, 'in'), key, { version: '2.0.0', payloadSize: 8 * 1024 * 1024 });
  server = await startServer(data, [keyFile]);
  opsToken = await token('ops');
});

afterAll(async () => {
  await server?.stop('SIGKILL');
  await dir.cleanup();
});

describe('SIGKILL', () => {
  let deviceToken: string;

  it('commits a release, a channel, a device and its report', async () => {
    expect((await uploadFile(b1.path)).status).toBe(201);
    expect((await api('PUT', '/v1/channels/stable', opsToken, { product: 'gateway', version: '1.0.0' })).status).toBe(200);
    const enrolled = await api('POST', '/v1/devices/enroll', await token('enroll'), { id: 'gw-1', compatible: 'x86-gw' });
    expect(enrolled.status).toBe(201);
    deviceToken = ((await enrolled.json()) as { token: string }).token;
    const r = await api('POST', '/v1/devices/gw-1/reports', deviceToken, { id: 'rep-1', transaction: 'tx-1', version: '1.0.0', state: 'committed', outcome: 'success', at: new Date().toISOString() });
    expect(r.status).toBe(200);
  });

  it('during a slow upload leaves no partial bundle, and loses nothing committed', async () => {
    const bytes = await readFile(b2.path);
    const req = request(`${server!.url}/v1/releases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${opsToken}`, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    });
    const failed = new Promise<void>((resolve) => {
      req.on('error', () => resolve());
      req.on('response', (res) => {
        res.resume();
        resolve();
      });
    });
    // Half the bundle, then nothing more: the server is mid-verification when it dies.
    req.write(bytes.subarray(0, bytes.length / 2));
    await until('the upload to reach tmp/', async () => {
      const files = await readdir(join(data, 'tmp'));
      return files.length === 1 && (await stat(join(data, 'tmp', files[0]!))).size > 1024 * 1024;
    });
    await server!.stop('SIGKILL');
    await failed;
    req.destroy();
    // What a crash between storing and recording would leave: an unrecorded complete file.
    const orphan = 'f'.repeat(64);
    await writeFile(join(data, 'bundles', orphan), 'left over');

    server = await startServer(data, [keyFile]);
    expect(server.output()).toContain('removed 1 unrecorded bundle file');
    expect(await storageFiles(data)).toEqual({ bundles: [b1.sha256], tmp: [] });
    const releases = (await (await api('GET', '/v1/releases', opsToken)).json()) as { releases: { version: string }[]; channels: { name: string; version: string }[] };
    expect(releases.releases.map((r) => r.version)).toEqual(['1.0.0']);
    expect(releases.channels).toEqual([expect.objectContaining({ name: 'stable', version: '1.0.0' })]);
    const dev = (await (await api('GET', '/v1/devices/gw-1', opsToken)).json()) as { device: { version: string }; reports: { id: string }[] };
    expect(dev.device.version).toBe('1.0.0');
    expect(dev.reports.map((r) => r.id)).toEqual(['rep-1']);
    // The device's token survived too, and the stored bundle is intact.
    const dl = await api('GET', `/v1/bundles/${b1.sha256}`, deviceToken);
    expect(Buffer.from(await dl.arrayBuffer()).equals(await readFile(b1.path))).toBe(true);
  });

  it('at rest loses nothing, and the interrupted upload succeeds when sent again', async () => {
    expect((await uploadFile(b2.path)).status).toBe(201);
    expect((await api('PUT', '/v1/channels/stable', opsToken, { product: 'gateway', version: '2.0.0' })).status).toBe(200);
    const r = await api('POST', '/v1/devices/gw-1/reports', deviceToken, { id: 'rep-2', transaction: 'tx-2', version: '2.0.0', state: 'downloading', at: new Date().toISOString() });
    expect(r.status).toBe(200);
    await server!.stop('SIGKILL');

    server = await startServer(data, [keyFile]);
    expect((await storageFiles(data)).bundles.sort()).toEqual([b1.sha256, b2.sha256].sort());
    expect((await storageFiles(data)).tmp).toEqual([]);
    const releases = (await (await api('GET', '/v1/releases', opsToken)).json()) as { releases: { version: string; channels: string[] }[] };
    expect(releases.releases).toEqual([expect.objectContaining({ version: '1.0.0', channels: [] }), expect.objectContaining({ version: '2.0.0', channels: ['stable'] })]);
    const dev = (await (await api('GET', '/v1/devices/gw-1', opsToken)).json()) as { reports: { id: string }[] };
    expect(dev.reports.map((x) => x.id)).toEqual(['rep-2', 'rep-1']);
    // A retried report after the restart is still recognised as a duplicate.
    const again = await api('POST', '/v1/devices/gw-1/reports', deviceToken, { id: 'rep-2', transaction: 'tx-2', version: '2.0.0', state: 'downloading', at: new Date().toISOString() });
    expect(await again.json()).toEqual({ id: 'rep-2', duplicate: true });
    for (const b of [b1, b2]) expect((await readFile(join(data, 'bundles', b.sha256))).equals(await readFile(b.path))).toBe(true);
  });
});

describe('a client that goes away mid-upload', () => {
  it('leaves nothing in tmp/ and the server serving', async () => {
    const bytes = await readFile(b2.path);
    const req = request(`${server!.url}/v1/releases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${opsToken}`, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    });
    req.on('error', () => undefined);
    req.write(bytes.subarray(0, 2 * 1024 * 1024));
    await until('the upload to reach tmp/', async () => (await readdir(join(data, 'tmp'))).length === 1);
    req.destroy();
    await until('tmp/ to be emptied', async () => (await readdir(join(data, 'tmp'))).length === 0);
    expect((await api('GET', '/v1/releases', opsToken)).status).toBe(200);
    // The log line may reach the pipe after tmp/ was emptied: wait for it rather than race it.
    await until('the refusal to be logged', async () => /upload refused: .*UPLOAD_ABORTED|"code":"UPLOAD_ABORTED"/.test(server!.output()));
  });
});

describe('Range downloads over HTTP', () => {
  let bytes: Buffer;
  let deviceToken: string;
  const get = (headers: Record<string, string>) => api('GET', `/v1/bundles/${b1.sha256}`, deviceToken, undefined, headers);

  beforeAll(async () => {
    bytes = await readFile(b1.path);
    const res = await api('POST', '/v1/devices/enroll', opsToken, { id: 'gw-range', compatible: 'x86-gw' });
    deviceToken = ((await res.json()) as { token: string }).token;
  });

  it('reassembles the exact bundle from random consecutive ranges', async () => {
    for (let round = 0; round < 3; round++) {
      const cuts = [0, ...Array.from({ length: 12 }, () => randomInt(1, bytes.length)), bytes.length].sort((a, b) => a - b);
      const parts: Buffer[] = [];
      for (let k = 0; k + 1 < cuts.length; k++) {
        const [start, end] = [cuts[k]!, cuts[k + 1]! - 1];
        if (end < start) continue;
        // Mix the forms: a-b, and a- or -n for the last piece.
        const last = end === bytes.length - 1;
        const spec = last && round === 1 ? `${start}-` : last && round === 2 ? `-${bytes.length - start}` : `${start}-${end}`;
        const res = await get({ range: `bytes=${spec}` });
        expect(res.status).toBe(206);
        expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${bytes.length}`);
        expect(res.headers.get('content-length')).toBe(String(end - start + 1));
        parts.push(Buffer.from(await res.arrayBuffer()));
      }
      expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    }
  });

  it('answers arbitrary single ranges with exactly those bytes', async () => {
    for (let k = 0; k < 40; k++) {
      const a = randomInt(0, bytes.length);
      const b = a + randomInt(0, 200_000);
      const res = await get({ range: `bytes=${a}-${b}` });
      expect(res.status).toBe(206);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(a, b + 1))).toBe(true);
    }
  });

  it('answers 416 with the size for a range past the end', async () => {
    for (const spec of [`${bytes.length}-`, `${bytes.length + 10}-${bytes.length + 20}`, '-0']) {
      const res = await get({ range: `bytes=${spec}` });
      expect(res.status).toBe(416);
      expect(res.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
      expect(await res.json()).toMatchObject({ error: 'RANGE_NOT_SATISFIABLE' });
    }
  });

  it('honours If-Range: the same ETag gets the range, another gets the whole bundle', async () => {
    const etag = `"${b1.sha256}"`;
    const same = await get({ range: 'bytes=100-199', 'if-range': etag });
    expect(same.status).toBe(206);
    expect(Buffer.from(await same.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);
    for (const other of [`"${'0'.repeat(64)}"`, `W/${etag}`, 'Sat, 21 Nov 2026 10:00:00 GMT']) {
      const res = await get({ range: 'bytes=100-199', 'if-range': other });
      expect(res.status).toBe(200);
      expect(res.headers.get('etag')).toBe(etag);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });

  it('sends the whole bundle for a multi-range or malformed Range, and answers HEAD', async () => {
    for (const range of ['bytes=0-1,5-9', 'bytes=9-3', 'pages=1-2']) {
      const res = await get({ range });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).length).toBe(bytes.length);
    }
    const head = await api('HEAD', `/v1/bundles/${b1.sha256}`, deviceToken);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    expect(head.headers.get('accept-ranges')).toBe('bytes');
  });
});

describe('the exported server key', () => {
  it('verifies check-in answers over HTTP; a changed byte fails', async () => {
    const exported = await runCli('server', ['key', 'export', '--data', data]);
    expect(exported.code, exported.stderr).toBe(0);
    // execa drops the final newline.
    expect(exported.stdout.trim()).toBe((await readFile(join(data, 'server-key.pub'), 'utf8')).trim());
    const fpr = await runCli('server', ['key', 'fingerprint', '--data', data]);
    expect(server!.output()).toContain(`server key ${fpr.stdout.trim()}`);
    const keyring = await keyringFromArmored([exported.stdout]);

    const enrolled = (await (await api('POST', '/v1/devices/enroll', opsToken, { id: 'gw-sig', compatible: 'x86-gw' })).json()) as { token: string; serverKey: string };
    expect(enrolled.serverKey.trim()).toBe(exported.stdout.trim());
    const nonce = newNonce();
    const res = await api('POST', '/v1/devices/gw-sig/checkin', enrolled.token, { nonce, slot: 'A', version: null, state: 'idle' });
    const envelope = (await res.json()) as { payload: string; signature: string };
    const answer = await verifyAnswer(envelope, keyring, { device: 'gw-sig', nonce });
    expect(answer.directive).toMatchObject({ type: 'update', release: { version: '2.0.0', url: `${server!.url}/v1/bundles/${b2.sha256}` } });
    const payload = Buffer.from(envelope.payload, 'base64');
    const at = randomInt(0, payload.length);
    payload[at] = payload[at]! ^ 0x04;
    await expect(verifyAnswer({ ...envelope, payload: payload.toString('base64') }, keyring, { device: 'gw-sig', nonce })).rejects.toMatchObject({ code: 'SIGNATURE_BAD' });
  });
});

describe('tokens from the CLI while the server runs', () => {
  it('lists without secrets and revokes at once', async () => {
    const t = await runCli('server', ['token', 'create', '--role', 'technician', '--name', 'alice', '--data', data, '--json']);
    expect(t.code, t.stderr).toBe(0);
    const created = JSON.parse(t.stdout) as { id: string; token: string };
    expect((await api('GET', '/v1/devices', created.token)).status).toBe(200);
    const list = await runCli('server', ['token', 'list', '--data', data]);
    expect(list.stdout).toContain(created.id);
    expect(list.stdout).toContain('alice');
    expect(list.stdout).not.toContain(created.token);
    // On PostgreSQL no server.db exists; the tokens table holds hashes there too (same SQL).
    if (!ON_POSTGRES) expect(await readFile(join(data, 'server.db'))).not.toContain(Buffer.from(created.token));
    const revoke = await runCli('server', ['token', 'revoke', created.id, '--data', data]);
    expect(revoke.code, revoke.stderr).toBe(0);
    const res = await api('GET', '/v1/devices', created.token);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'AUTH_INVALID' });
    expect((await runCli('server', ['token', 'revoke', 'tok_nope', '--data', data])).stderr).toMatch(/^ota-server token: TOKEN_NOT_FOUND: /);
  });

  it('refuses bad usage with exit 2', async () => {
    for (const args of [['token', 'create', '--role', 'device'], ['token', 'frobnicate'], ['token', 'create'], ['token', 'revoke'], ['start', '--port', 'eighty'], ['start', '--bogus']]) {
      const r = await runCli('server', [...args, '--data', data]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('refuses a bad config file with exit 1 naming the key', async () => {
    const cfg = join(dir.dir, 'bad.json');
    await writeFile(cfg, JSON.stringify({ data, prot: 1 }));
    const r = await runCli('server', ['start', '--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ota-server start: SERVER_CONFIG_UNKNOWN_KEY: .*"prot"/);
  });
});

it('keeps the server key across restarts (devices keep trusting it)', async () => {
  const before = await readFile(join(data, 'server-key.asc'));
  expect((await stat(join(data, 'server-key.asc'))).mode & 0o777).toBe(0o600);
  await server!.stop('SIGTERM');
  server = await startServer(data, [keyFile]);
  expect((await readFile(join(data, 'server-key.asc'))).equals(before)).toBe(true);
});
