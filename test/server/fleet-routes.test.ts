/** Fleet routes in process: products at enrollment, tags, attributes, filters, windows in the signed answer, rollout validation. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNonce, verifyAnswer } from '../../shared/protocol.js';
import { keyringFromArmored } from '../../shared/signing.js';
import { bearer, makeBundle, releaseKey, testServer, type TestServer } from './helpers.js';

let s: TestServer;
const tokens: Record<string, string> = {};

async function enroll(id: string, product: string, compatible: string): Promise<void> {
  const res = await s.app.inject({ method: 'POST', url: '/v1/devices/enroll', headers: bearer(s.tokens.enroll), payload: { id, compatible, product } });
  expect(res.statusCode, res.body).toBe(201);
  tokens[id] = (res.json() as { token: string }).token;
}

async function checkin(id: string, attributes?: Record<string, string>) {
  const nonce = newNonce();
  const res = await s.app.inject({
    method: 'POST',
    url: `/v1/devices/${id}/checkin`,
    headers: bearer(tokens[id]!),
    payload: { nonce, slot: 'A', version: null, state: 'idle', ...(attributes ? { attributes } : {}) },
  });
  expect(res.statusCode, res.body).toBe(200);
  return verifyAnswer(res.json(), await keyringFromArmored([s.app.signer.publicKey]), { device: id, nonce });
}

beforeAll(async () => {
  const key = await releaseKey();
  s = await testServer([key]);
  for (const [product, compatible] of [['gateway', 'x86-gw'], ['charger', 'evc']] as const) {
    const b = await makeBundle(join(s.data, '..', 'in', product), key, { product, version: '1.0.0', compatible: [compatible] });
    const up = await s.app.inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' }, payload: await readFile(b.path) });
    expect(up.statusCode, up.body).toBe(201);
  }
  await enroll('gw-1', 'gateway', 'x86-gw');
  await enroll('evc-1', 'charger', 'evc');
  await enroll('evc-2', 'charger', 'evc');
});

afterAll(async () => {
  await s.close();
});

describe('fleet routes', () => {
  it('stores one version in two products and publishes per product', async () => {
    const pub = await s.app.inject({ method: 'PUT', url: '/v1/channels/stable', headers: bearer(s.tokens.ops), payload: { product: 'charger', version: '1.0.0' } });
    expect(pub.json()).toMatchObject({ product: 'charger', channel: 'stable', previous: null, rollout: expect.stringMatching(/^ro_/) });
    expect((await checkin('evc-1')).directive).toMatchObject({ type: 'update', release: { version: '1.0.0' } });
    // The gateway's stable channel is not published: its device is offered nothing.
    expect((await checkin('gw-1')).directive).toEqual({ type: 'none' });
    const one = await s.app.inject({ method: 'GET', url: '/v1/products/charger/releases/1.0.0', headers: bearer(s.tokens.technician) });
    expect(one.json()).toMatchObject({ release: { product: 'charger', version: '1.0.0', channels: ['stable'] }, rollouts: [{ kind: 'publish', state: 'running' }] });
  });

  it('records reported attributes and filters the fleet by them and by tags', async () => {
    await checkin('evc-2', { site: 'lyon', hardware: 'rev-c' });
    const tag = await s.app.inject({ method: 'PUT', url: '/v1/devices/evc-2/tags/site-lyon', headers: bearer(s.tokens.ops) });
    expect(tag.json()).toEqual({ id: 'evc-2', tags: ['site-lyon'] });
    const byAttr = await s.app.inject({ method: 'GET', url: '/v1/devices?attr=site=lyon', headers: bearer(s.tokens.ops) });
    expect(byAttr.json().devices.map((d: { id: string }) => d.id)).toEqual(['evc-2']);
    const byTag = await s.app.inject({ method: 'GET', url: '/v1/devices?tag=site-lyon&product=charger', headers: bearer(s.tokens.ops) });
    expect(byTag.json().devices).toEqual([expect.objectContaining({ id: 'evc-2', product: 'charger', tags: ['site-lyon'], attributes: { hardware: 'rev-c', site: 'lyon' } })]);
    expect((await s.app.inject({ method: 'GET', url: '/v1/devices?attr=site', headers: bearer(s.tokens.ops) })).statusCode).toBe(400);
    expect((await s.app.inject({ method: 'PUT', url: '/v1/devices/nope/tags/x', headers: bearer(s.tokens.ops) })).json().error).toBe('DEVICE_NOT_FOUND');
    expect((await s.app.inject({ method: 'PUT', url: '/v1/devices/evc-2/tags/x', headers: bearer(s.tokens.technician) })).statusCode).toBe(403);
    const del = await s.app.inject({ method: 'DELETE', url: '/v1/devices/evc-2/tags/site-lyon', headers: bearer(s.tokens.ops) });
    expect(del.json()).toEqual({ id: 'evc-2', tags: [] });
  });

  it('sends the windows of the device\u2019s groups in the signed answer, and only to them', async () => {
    await s.app.inject({ method: 'PUT', url: '/v1/devices/evc-1/tags/night', headers: bearer(s.tokens.ops) });
    const w = { tag: 'night', days: ['mon', 'sat'], start: '01:30', durationMinutes: 90, timeZone: 'America/New_York' };
    expect((await s.app.inject({ method: 'PUT', url: '/v1/windows/nights', headers: bearer(s.tokens.ops), payload: w })).statusCode).toBe(200);
    expect((await checkin('evc-1')).windows).toEqual([{ days: ['mon', 'sat'], start: '01:30', durationMinutes: 90, timeZone: 'America/New_York' }]);
    expect((await checkin('evc-2')).windows).toBeUndefined();
    const bad = await s.app.inject({ method: 'PUT', url: '/v1/windows/x', headers: bearer(s.tokens.ops), payload: { ...w, timeZone: 'Atlantis/Capital' } });
    expect(bad.json().error).toBe('WINDOW_INVALID');
    expect((await s.app.inject({ method: 'DELETE', url: '/v1/windows/nights', headers: bearer(s.tokens.ops) })).statusCode).toBe(200);
    expect((await checkin('evc-1')).windows).toBeUndefined();
  });

  it('validates rollouts and their control', async () => {
    const post = (payload: Record<string, unknown>) => s.app.inject({ method: 'POST', url: '/v1/rollouts', headers: bearer(s.tokens.ops), payload });
    expect((await post({ product: 'charger', version: '9.9.9' })).json().error).toBe('RELEASE_NOT_FOUND');
    expect((await post({ product: 'charger', version: '1.0.0', phases: [{ percent: 10 }] })).json().error).toBe('ROLLOUT_INVALID');
    expect((await post({ product: 'charger', version: '1.0.0', phases: [{ percent: 10, count: 3 }, { percent: 100 }] })).json().error).toBe('REQUEST_INVALID');
    const ok = await post({ product: 'charger', version: '1.0.0', tags: ['none-has-it'] });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({ kind: 'staged', state: 'running', totals: { members: 0 }, successShare: 0.9, pauseFailureShare: 0.1, pauseFailures: null });
    expect((await s.app.inject({ method: 'POST', url: '/v1/rollouts/ro_0123456789abcdef/pause', headers: bearer(s.tokens.ops) })).json().error).toBe('ROLLOUT_NOT_FOUND');
    expect((await s.app.inject({ method: 'POST', url: `/v1/rollouts/${ok.json().id}/pause`, headers: bearer(s.tokens.technician) })).statusCode).toBe(403);
  });
});
