/**
 * Check-ins end to end through the app: the answer is signed by the exported server key and
 * names the device and nonce; the directive follows the channel, the device type, the version
 * order, transactions in flight, failures reported earlier and technician rollback requests.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNonce, verifyAnswer, type CheckinAnswer, type CheckinRequest, type Report, type SignedEnvelope } from '../../shared/protocol.js';
import { keyringFromArmored, type GeneratedKey, type Keyring } from '../../shared/signing.js';
import { readServerPublicKey } from '../../server/server-key.js';
import { bearer, enroll, makeBundle, releaseKey, testServer, type BuiltBundle, type TestServer } from './helpers.js';
import { ON_POSTGRES } from '../../scripts/fleet/test-database.js';

let key: GeneratedKey;
let s: TestServer;
let serverKeyring: Keyring;
const bundles: Record<string, BuiltBundle> = {};
const devices: Record<string, string> = {};

async function checkin(device: string, over: Partial<CheckinRequest> = {}, token = devices[device]!): Promise<{ envelope: SignedEnvelope; answer: CheckinAnswer }> {
  const body: CheckinRequest = { nonce: newNonce(), slot: 'A', version: null, state: 'idle', ...over };
  const res = await s.app.inject({ method: 'POST', url: `/v1/devices/${device}/checkin`, headers: bearer(token), payload: body });
  expect(res.statusCode, res.body).toBe(200);
  const envelope = res.json() as SignedEnvelope;
  return { envelope, answer: await verifyAnswer(envelope, serverKeyring, { device, nonce: body.nonce }) };
}

async function report(device: string, r: Partial<Report> & { id: string }): Promise<void> {
  const body: Report = { transaction: 'tx', version: '1.0.0', state: 'downloading', at: new Date().toISOString(), ...r };
  const res = await s.app.inject({ method: 'POST', url: `/v1/devices/${device}/reports`, headers: bearer(devices[device]!), payload: body });
  expect(res.statusCode, res.body).toBe(200);
}

async function publish(channel: string, version: string): Promise<void> {
  const res = await s.app.inject({ method: 'PUT', url: `/v1/channels/${channel}`, headers: bearer(s.tokens.ops), payload: { product: 'gateway', version } });
  expect(res.statusCode, res.body).toBe(200);
}

beforeAll(async () => {
  key = await releaseKey();
  s = await testServer([key], { pollInterval: 120, answerTtl: 60 });
  for (const [version, compatible] of [['1.0.0', ['x86-gw']], ['1.1.0', ['x86-gw', 'rpi-cm4']], ['2.0.0-rc.1', ['x86-gw']]] as const) {
    const b = await makeBundle(join(s.data, '..', 'in'), key, { version, compatible: [...compatible] });
    const res = await s.app.inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' }, payload: await readFile(b.path) });
    expect(res.statusCode).toBe(201);
    bundles[version] = b;
  }
  // The key devices get is the one the data directory exports (server-key.pub).
  serverKeyring = await keyringFromArmored([(await readServerPublicKey(s.data))!]);
  for (const [id, compatible, channel] of [['gw1', 'x86-gw', undefined], ['gw2', 'x86-gw', undefined], ['pi1', 'rpi-cm4', undefined], ['beta1', 'x86-gw', 'beta']] as const) {
    devices[id] = await enroll(s, id, compatible, channel);
  }
});

afterAll(async () => {
  await s.close();
});

describe('the signed answer', () => {
  it('verifies with the exported server key and carries device, nonce, issue, expiry and poll interval', async () => {
    const before = Date.now();
    const { answer } = await checkin('gw1');
    expect(answer).toMatchObject({ device: 'gw1', directive: { type: 'none' }, pollInterval: 120 });
    expect(Date.parse(answer.issued)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(answer.expires) - Date.parse(answer.issued)).toBe(60_000);
    expect(s.app.signer.publicKey).toBe(await readServerPublicKey(s.data));
  });

  it('fails verification when one byte of the payload or the signature changes', async () => {
    const { envelope, answer } = await checkin('gw1');
    const expect_ = { device: 'gw1', nonce: answer.nonce };
    const payload = Buffer.from(envelope.payload, 'base64');
    for (let at = 0; at < payload.length; at += Math.ceil(payload.length / 7)) {
      const changed = Buffer.from(payload);
      changed[at] = changed[at]! ^ 0x20;
      await expect(verifyAnswer({ ...envelope, payload: changed.toString('base64') }, serverKeyring, expect_)).rejects.toMatchObject({ code: 'SIGNATURE_BAD' });
    }
    const sig = Buffer.from(envelope.signature, 'base64');
    sig[sig.length - 5] = sig[sig.length - 5]! ^ 0x01;
    await expect(verifyAnswer({ ...envelope, signature: sig.toString('base64') }, serverKeyring, expect_)).rejects.toMatchObject({ code: expect.stringMatching(/^SIGNATURE_/) });
  });

  it('is bound to its device, nonce and lifetime', async () => {
    const { envelope, answer } = await checkin('gw1');
    await expect(verifyAnswer(envelope, serverKeyring, { device: 'gw2', nonce: answer.nonce })).rejects.toMatchObject({ code: 'ANSWER_WRONG_DEVICE' });
    await expect(verifyAnswer(envelope, serverKeyring, { device: 'gw1', nonce: newNonce() })).rejects.toMatchObject({ code: 'ANSWER_WRONG_NONCE' });
    const later = new Date(Date.parse(answer.expires) + 1000);
    await expect(verifyAnswer(envelope, serverKeyring, { device: 'gw1', nonce: answer.nonce, now: later })).rejects.toMatchObject({ code: 'ANSWER_EXPIRED' });
  });

  it('does not verify with another key', async () => {
    const { envelope, answer } = await checkin('gw1');
    const other = await keyringFromArmored([key.publicKey]);
    await expect(verifyAnswer(envelope, other, { device: 'gw1', nonce: answer.nonce })).rejects.toMatchObject({ code: 'SIGNATURE_UNKNOWN_KEY' });
  });
});

describe('the directive', () => {
  it('offers the channel release with its signed manifest and an absolute bundle URL', async () => {
    await publish('stable', '1.0.0');
    const { answer } = await checkin('gw1');
    expect(answer.directive.type).toBe('update');
    if (answer.directive.type !== 'update') return;
    const r = answer.directive.release;
    const b = bundles['1.0.0']!;
    expect(r).toMatchObject({ version: '1.0.0', sha256: b.sha256, size: b.size, url: `http://localhost:80/v1/bundles/${b.sha256}` });
    const bytes = await readFile(b.path);
    const manifest = Buffer.from(r.manifest, 'base64');
    expect(bytes.indexOf(manifest)).toBe(512);
    expect(JSON.parse(manifest.toString('utf8'))).toMatchObject({ version: '1.0.0', compatible: ['x86-gw'] });
    expect(bytes.indexOf(Buffer.from(r.manifestSignature, 'base64'))).toBeGreaterThan(512);
  });

  it('offers nothing to a device type the release is not made for', async () => {
    expect((await checkin('pi1')).answer.directive).toEqual({ type: 'none' });
    await publish('stable', '1.1.0');
    expect((await checkin('pi1')).answer.directive).toMatchObject({ type: 'update', release: { version: '1.1.0' } });
  });

  it('offers nothing that is not newer than the committed release', async () => {
    expect((await checkin('gw1', { version: '1.1.0', state: 'committed' })).answer.directive).toEqual({ type: 'none' });
    expect((await checkin('gw1', { version: '1.2.0' })).answer.directive).toEqual({ type: 'none' });
    expect((await checkin('gw1', { version: '1.0.0' })).answer.directive).toMatchObject({ type: 'update', release: { version: '1.1.0' } });
  });

  it('offers nothing while the device is in a transaction for that release', async () => {
    const busy = { version: '1.0.0', state: 'downloading' as const, transaction: { id: 'tx-9', version: '1.1.0', state: 'downloading' as const } };
    expect((await checkin('gw1', busy)).answer.directive).toEqual({ type: 'none' });
    const dev = await s.app.inject({ method: 'GET', url: '/v1/devices/gw1', headers: bearer(s.tokens.ops) });
    expect(dev.json().device).toMatchObject({ version: '1.0.0', state: 'downloading', transaction: { id: 'tx-9', version: '1.1.0', state: 'downloading' } });
  });

  it('does not offer a release again to a device where it failed, but still to others', async () => {
    await report('gw1', { id: 'f-1', transaction: 'tx-9', version: '1.1.0', state: 'verifying' });
    await report('gw1', { id: 'f-2', transaction: 'tx-9', version: '1.1.0', state: 'rolled-back', outcome: 'failure', reason: 'health-check:modbus' });
    expect((await checkin('gw1', { version: '1.0.0', state: 'idle' })).answer.directive).toEqual({ type: 'none' });
    expect((await checkin('gw2', { version: '1.0.0' })).answer.directive).toMatchObject({ type: 'update', release: { version: '1.1.0' } });
    const dev = (await s.app.inject({ method: 'GET', url: '/v1/devices/gw1', headers: bearer(s.tokens.ops) })).json();
    expect(dev.device.lastOutcome).toMatchObject({ outcome: 'failure', reason: 'health-check:modbus', version: '1.1.0' });
    expect(dev.transactions[0]).toMatchObject({ id: 'tx-9', version: '1.1.0', state: 'rolled-back', outcome: 'failure', reason: 'health-check:modbus' });
    // A newer release on the channel is offered again.
    await publish('stable', '2.0.0-rc.1');
    expect((await checkin('gw1', { version: '1.0.0' })).answer.directive).toMatchObject({ type: 'update', release: { version: '2.0.0-rc.1' } });
  });

  it('records a success: the device record shows the outcome and the committed version', async () => {
    await report('gw2', { id: 's-1', transaction: 'tx-1', version: '1.1.0', state: 'committed', outcome: 'success', details: { checks: [{ name: 'modbus', ok: true }] } });
    const dev = (await s.app.inject({ method: 'GET', url: '/v1/devices/gw2', headers: bearer(s.tokens.technician) })).json();
    expect(dev.device).toMatchObject({ version: '1.1.0', lastOutcome: { outcome: 'success', reason: null, version: '1.1.0' } });
    expect(dev.reports[0]).toMatchObject({ id: 's-1', details: { checks: [{ name: 'modbus', ok: true }] } });
  });

  it('follows the device\'s own channel', async () => {
    expect((await checkin('beta1')).answer.directive).toEqual({ type: 'none' });
    await publish('beta', '1.0.0');
    expect((await checkin('beta1')).answer.directive).toMatchObject({ type: 'update', release: { version: '1.0.0' } });
  });

  it('delivers a technician rollback request exactly once, before any update', async () => {
    const req = await s.app.inject({ method: 'POST', url: '/v1/devices/beta1/rollback', headers: bearer(s.tokens.technician), payload: { note: 'customer reports relay chatter' } });
    expect(req.statusCode).toBe(202);
    const id = req.json().id as string;
    const listed = (await s.app.inject({ method: 'GET', url: '/v1/devices/beta1', headers: bearer(s.tokens.ops) })).json();
    expect(listed.device.pendingRollback).toBe(id);
    expect((await checkin('beta1')).answer.directive).toEqual({ type: 'rollback', id });
    expect((await checkin('beta1')).answer.directive).toMatchObject({ type: 'update' });
    const after = (await s.app.inject({ method: 'GET', url: '/v1/devices/beta1', headers: bearer(s.tokens.ops) })).json();
    expect(after.device.pendingRollback).toBeNull();
    expect(after.rollbacks[0]).toMatchObject({ id, note: 'customer reports relay chatter', delivered: expect.any(String) });
  });
});

// SQLite's synchronous modes; PostgreSQL commits every transaction durably.
describe.skipIf(ON_POSTGRES)('durability of check-ins', () => {
  // A temporary trigger notes the synchronous mode (1 NORMAL, 2 FULL) in force when a check-in
  // writes the device row and when it marks a rollback request delivered.
  const modes = (): Array<{ what: string; mode: number }> => s.app.store.db.prepare('SELECT what, mode FROM sync_seen ORDER BY rowid').all() as Array<{ what: string; mode: number }>;
  beforeAll(() => {
    s.app.store.db.exec(`
      CREATE TEMP TABLE sync_seen (what TEXT, mode INTEGER);
      CREATE TEMP TRIGGER sync_seen_device AFTER UPDATE ON main.devices BEGIN
        INSERT INTO sync_seen SELECT 'device', synchronous FROM pragma_synchronous();
      END;
      CREATE TEMP TRIGGER sync_seen_rollback AFTER UPDATE OF delivered ON main.rollbacks BEGIN
        INSERT INTO sync_seen SELECT 'rollback', synchronous FROM pragma_synchronous();
      END;`);
  });
  afterAll(() => {
    s.app.store.db.exec('DROP TRIGGER sync_seen_device; DROP TRIGGER sync_seen_rollback; DROP TABLE sync_seen;');
  });

  it('a plain check-in commits without an fsync of its own (NORMAL); one delivering a rollback with FULL; FULL is back after either', async () => {
    s.app.store.db.exec('DELETE FROM sync_seen');
    await checkin('gw2');
    expect(modes()).toEqual([{ what: 'device', mode: 1 }]);
    expect(s.app.store.db.pragma('synchronous', { simple: true })).toBe(2);

    s.app.store.db.exec('DELETE FROM sync_seen');
    const req = await s.app.inject({ method: 'POST', url: '/v1/devices/gw2/rollback', headers: bearer(s.tokens.technician), payload: {} });
    expect(req.statusCode, req.body).toBe(202);
    expect((await checkin('gw2')).answer.directive).toEqual({ type: 'rollback', id: req.json().id });
    expect(modes()).toEqual([{ what: 'device', mode: 2 }, { what: 'rollback', mode: 2 }]);
    expect(s.app.store.db.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('FULL is back after a check-in whose transaction fails', async () => {
    s.app.store.db.exec(`CREATE TEMP TRIGGER fail_pi1 BEFORE UPDATE ON main.devices WHEN OLD.id = 'pi1' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;`);
    try {
      const res = await s.app.inject({ method: 'POST', url: '/v1/devices/pi1/checkin', headers: bearer(devices.pi1!), payload: { nonce: newNonce(), slot: 'A', version: null, state: 'idle' } });
      expect(res.statusCode).toBe(500);
      expect(s.app.store.db.pragma('synchronous', { simple: true })).toBe(2);
    } finally {
      s.app.store.db.exec('DROP TRIGGER fail_pi1');
    }
    await checkin('pi1');
  });
});

describe('with a public URL configured', () => {
  it('bundle URLs use it, whatever Host the device used', async () => {
    const k = await releaseKey('pub');
    const p = await testServer([k], { publicUrl: 'https://ota.example.com/' });
    try {
      const b = await makeBundle(join(p.data, '..', 'in'), k, { version: '3.0.0' });
      await p.app.inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(p.tokens.ops), 'content-type': 'application/octet-stream' }, payload: await readFile(b.path) });
      await p.app.inject({ method: 'PUT', url: '/v1/channels/stable', headers: bearer(p.tokens.ops), payload: { product: 'gateway', version: '3.0.0' } });
      const token = await enroll(p, 'gw-x');
      const nonce = newNonce();
      const res = await p.app.inject({ method: 'POST', url: '/v1/devices/gw-x/checkin', headers: { ...bearer(token), host: 'internal:8080' }, payload: { nonce, slot: 'B', version: null, state: 'idle' } });
      const answer = await verifyAnswer(res.json(), await keyringFromArmored([p.app.signer.publicKey]), { device: 'gw-x', nonce });
      expect(answer.directive).toMatchObject({ type: 'update', release: { url: `https://ota.example.com/v1/bundles/${b.sha256}` } });
    } finally {
      await p.close();
    }
  });
});
