/**
 * Every route of DESIGN §8 through app.inject: without a token, with each wrong role, with
 * malformed, oversize and unknown-field requests, and on the happy path.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyringFromArmored, type GeneratedKey } from '../../shared/signing.js';
import { verifyAnswer } from '../../shared/protocol.js';
import type { Role } from '../../server/tokens.js';
import { bearer, enroll, makeBundle, releaseKey, testServer, type BuiltBundle, type TestServer } from './helpers.js';

let key: GeneratedKey;
let s: TestServer;
let bundle: BuiltBundle;
let bundleBytes: Buffer;
let deviceToken: string;
let otherDeviceToken: string;

const MAX_JSON = 4096;

function tokenFor(role: Role): string {
  return role === 'device' ? deviceToken : s.tokens[role];
}

function inject(opts: InjectOptions): Promise<LightMyRequestResponse> {
  return s.app.inject(opts);
}

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, body: res.json() as unknown }).toMatchObject({ status, body: { error: code, message: expect.any(String) } });
  expect(Object.keys(res.json() as object).sort()).toEqual(['error', 'message']);
}

/** One route, what it allows, and a valid request for it. */
interface RouteCase {
  name: string;
  method: 'GET' | 'POST' | 'PUT';
  url: () => string;
  roles: Role[];
  /** A valid JSON body, for routes that take one. */
  body?: () => Record<string, unknown>;
  /** A field the body must have. */
  required?: string;
}

const checkinBody = () => ({ nonce: 'ab'.repeat(32), slot: 'A', version: null, state: 'idle' });
let reportSeq = 0;
const reportBody = () => ({ id: `r-${++reportSeq}`, transaction: 'tx-1', version: '1.0.0', state: 'downloading', progress: { bytes: 1, total: 2 }, at: new Date().toISOString() });

const ROUTES: RouteCase[] = [
  { name: 'upload', method: 'POST', url: () => '/v1/releases', roles: ['ops'] },
  { name: 'list releases', method: 'GET', url: () => '/v1/releases', roles: ['ops', 'technician'] },
  { name: 'publish', method: 'PUT', url: () => '/v1/channels/stable', roles: ['ops'], body: () => ({ product: 'gateway', version: '1.0.0' }), required: 'version' },
  { name: 'enroll', method: 'POST', url: () => '/v1/devices/enroll', roles: ['enroll', 'ops'], body: () => ({ id: `dev-${++reportSeq}`, compatible: 'x86-gw' }), required: 'compatible' },
  { name: 'checkin', method: 'POST', url: () => '/v1/devices/dev-a/checkin', roles: ['device'], body: checkinBody, required: 'nonce' },
  { name: 'reports', method: 'POST', url: () => '/v1/devices/dev-a/reports', roles: ['device'], body: reportBody, required: 'transaction' },
  { name: 'fleet', method: 'GET', url: () => '/v1/devices', roles: ['ops', 'technician'] },
  { name: 'device', method: 'GET', url: () => '/v1/devices/dev-a', roles: ['ops', 'technician'] },
  { name: 'rollback', method: 'POST', url: () => '/v1/devices/dev-a/rollback', roles: ['ops', 'technician'], body: () => ({ note: 'route test' }) },
  { name: 'bundle', method: 'GET', url: () => `/v1/bundles/${bundle.sha256}`, roles: ['device', 'ops'] },
];

const ALL_ROLES: Role[] = ['ops', 'technician', 'enroll', 'device'];

beforeAll(async () => {
  key = await releaseKey();
  s = await testServer([key], { maxJsonBody: MAX_JSON, maxBundleSize: 1024 * 1024 });
  bundle = await makeBundle(join(s.data, '..', 'in'), key, { version: '1.0.0' });
  bundleBytes = await readFile(bundle.path);
  const up = await inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' }, payload: bundleBytes });
  expect(up.statusCode).toBe(201);
  deviceToken = await enroll(s, 'dev-a');
  otherDeviceToken = await enroll(s, 'dev-b');
});

afterAll(async () => {
  await s.close();
});

describe.each(ROUTES)('$method $name', (route) => {
  const base = (headers: Record<string, string> = {}): InjectOptions => ({
    method: route.method,
    url: route.url(),
    headers,
    ...(route.body ? { payload: route.body() } : {}),
  });

  it('refuses a request without a token (401 AUTH_REQUIRED)', async () => {
    expectError(await inject(base()), 401, 'AUTH_REQUIRED');
    expectError(await inject(base({ authorization: 'Basic b3BzOm9wcw==' })), 401, 'AUTH_REQUIRED');
  });

  it('refuses an unknown token (401 AUTH_INVALID)', async () => {
    expectError(await inject(base(bearer('otaab_not-a-real-token'))), 401, 'AUTH_INVALID');
  });

  it.each(ALL_ROLES.filter((r) => !route.roles.includes(r)))('refuses a %s token (403 AUTH_FORBIDDEN)', async (role) => {
    expectError(await inject(base(bearer(tokenFor(role)))), 403, 'AUTH_FORBIDDEN');
  });

  it('refuses unknown query parameters (400 REQUEST_INVALID)', async () => {
    const res = await inject({ ...base(bearer(tokenFor(route.roles[0]!))), url: `${route.url()}?verbose=1` });
    expectError(res, 400, 'REQUEST_INVALID');
    expect(res.json().message).toContain('verbose');
  });

  if (route.body) {
    const body = route.body;
    const auth = () => bearer(tokenFor(route.roles[0]!));

    it('refuses malformed JSON (400 REQUEST_MALFORMED)', async () => {
      const res = await inject({ ...base({ ...auth(), 'content-type': 'application/json' }), payload: '{"version": ' });
      expectError(res, 400, 'REQUEST_MALFORMED');
      expectError(await inject({ ...base({ ...auth(), 'content-type': 'application/json' }), payload: '' }), 400, 'REQUEST_MALFORMED');
    });

    it('refuses a body of the wrong shape or type (400/415)', async () => {
      expectError(await inject({ ...base(auth()), payload: [body()] as never }), 400, 'REQUEST_INVALID');
      expectError(await inject({ ...base({ ...auth(), 'content-type': 'text/plain' }), payload: 'version=1.0.0' }), 400, 'REQUEST_INVALID');
      expectError(await inject({ ...base({ ...auth(), 'content-type': 'application/octet-stream' }), payload: Buffer.from('{}') }), 415, 'REQUEST_MEDIA_TYPE');
      const first = Object.keys(body())[0]!;
      const res = await inject({ ...base(auth()), payload: { ...body(), [first]: 12345 } });
      expectError(res, 400, 'REQUEST_INVALID');
      expect(res.json().message).toContain(first);
    });

    it('refuses an oversize body (413 REQUEST_TOO_LARGE)', async () => {
      const res = await inject({ ...base(auth()), payload: { ...body(), padding: 'x'.repeat(MAX_JSON + 1) } });
      expectError(res, 413, 'REQUEST_TOO_LARGE');
    });

    it('refuses unknown fields, naming them (400 REQUEST_INVALID)', async () => {
      const res = await inject({ ...base(auth()), payload: { ...body(), surprise: true } });
      expectError(res, 400, 'REQUEST_INVALID');
      expect(res.json().message).toContain('"surprise" is unknown');
    });

    const drop = route.required;
    if (drop) {
      it('refuses a missing required field, naming it (400 REQUEST_INVALID)', async () => {
        const full = body();
        delete full[drop];
        const res = await inject({ ...base(auth()), payload: full });
        expectError(res, 400, 'REQUEST_INVALID');
        expect(res.json().message).toContain(`"${drop}" is required`);
      });
    }
  }
});

describe('device-bound routes', () => {
  it.each(['checkin', 'reports'])('refuse another device\'s token on %s (403 AUTH_WRONG_DEVICE)', async (name) => {
    const route = ROUTES.find((r) => r.name === name)!;
    expectError(await inject({ method: route.method, url: route.url(), headers: bearer(otherDeviceToken), payload: route.body!() }), 403, 'AUTH_WRONG_DEVICE');
  });
});

describe('upload route', () => {
  const ops = () => ({ ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' });

  it('refuses a body that is not a bundle (400 BUNDLE_NOT_TAR)', async () => {
    expectError(await inject({ method: 'POST', url: '/v1/releases', headers: ops(), payload: Buffer.alloc(4096, 0x41) }), 400, 'BUNDLE_NOT_TAR');
  });

  it('refuses an oversize bundle by Content-Length and by counting (413 UPLOAD_TOO_LARGE)', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1);
    expectError(await inject({ method: 'POST', url: '/v1/releases', headers: ops(), payload: big }), 413, 'UPLOAD_TOO_LARGE');
    // A valid bundle, larger than the cap, streamed without Content-Length: counted and cut.
    const large = await readFile((await makeBundle(join(s.data, '..', 'large'), key, { version: '5.0.0', payloadSize: 2 * 1024 * 1024 })).path);
    const chunked = Readable.from((function* () {
      for (let at = 0; at < large.length; at += 64 * 1024) yield large.subarray(at, at + 64 * 1024);
    })());
    expectError(await inject({ method: 'POST', url: '/v1/releases', headers: ops(), payload: chunked }), 413, 'UPLOAD_TOO_LARGE');
  });

  it('refuses a JSON body (415 REQUEST_MEDIA_TYPE)', async () => {
    expectError(await inject({ method: 'POST', url: '/v1/releases', headers: bearer(s.tokens.ops), payload: { product: 'gateway', version: '1.0.0' } }), 415, 'REQUEST_MEDIA_TYPE');
  });

  it('refuses the same version again (409 RELEASE_EXISTS)', async () => {
    expectError(await inject({ method: 'POST', url: '/v1/releases', headers: ops(), payload: bundleBytes }), 409, 'RELEASE_EXISTS');
  });
});

describe('happy paths', () => {
  it('lists releases and channels', async () => {
    const res = await inject({ method: 'GET', url: '/v1/releases', headers: bearer(s.tokens.technician) });
    expect(res.statusCode).toBe(200);
    expect(res.json().releases).toEqual([
      expect.objectContaining({ version: '1.0.0', sha256: bundle.sha256, size: bundle.size, product: 'gateway', compatible: ['x86-gw'], signer: key.fingerprint }),
    ]);
  });

  it('publishes a release to a channel and names the previous one', async () => {
    const first = await inject({ method: 'PUT', url: '/v1/channels/beta', headers: bearer(s.tokens.ops), payload: { product: 'gateway', version: '1.0.0' } });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ product: 'gateway', channel: 'beta', version: '1.0.0', previous: null });
    const again = await inject({ method: 'PUT', url: '/v1/channels/beta', headers: bearer(s.tokens.ops), payload: { product: 'gateway', version: '1.0.0' } });
    expect(again.json()).toMatchObject({ previous: '1.0.0' });
    expectError(await inject({ method: 'PUT', url: '/v1/channels/beta', headers: bearer(s.tokens.ops), payload: { product: 'gateway', version: '9.9.9' } }), 404, 'RELEASE_NOT_FOUND');
    expectError(await inject({ method: 'PUT', url: '/v1/channels/Not%20A%20Channel', headers: bearer(s.tokens.ops), payload: { product: 'gateway', version: '1.0.0' } }), 400, 'REQUEST_INVALID');
    const list = await inject({ method: 'GET', url: '/v1/releases', headers: bearer(s.tokens.ops) });
    expect(list.json().channels).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'beta', version: '1.0.0' })]));
  });

  it('enrolls a device once; only ops may take an enrolled id over', async () => {
    const res = await inject({ method: 'POST', url: '/v1/devices/enroll', headers: bearer(s.tokens.enroll), payload: { id: 'dev-new', compatible: 'x86-gw', channel: 'beta' } });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ id: 'dev-new', channel: 'beta', compatible: 'x86-gw' });
    expect(body.token).toMatch(/^otaab_/);
    expect(body.serverKey).toBe(s.app.signer.publicKey);
    const again = { id: 'dev-new', compatible: 'x86-gw' };
    expectError(await inject({ method: 'POST', url: '/v1/devices/enroll', headers: bearer(s.tokens.enroll), payload: again }), 409, 'DEVICE_EXISTS');
    expectError(await inject({ method: 'POST', url: '/v1/devices/enroll', headers: bearer(s.tokens.enroll), payload: { ...again, replace: true } }), 403, 'AUTH_FORBIDDEN');
    const replaced = await inject({ method: 'POST', url: '/v1/devices/enroll', headers: bearer(s.tokens.ops), payload: { ...again, replace: true } });
    expect(replaced.statusCode).toBe(201);
    // The old device token stops working the moment the id is re-enrolled.
    const stale = await inject({ method: 'POST', url: '/v1/devices/dev-new/checkin', headers: bearer(body.token), payload: checkinBody() });
    expectError(stale, 401, 'AUTH_INVALID');
    const fresh = await inject({ method: 'POST', url: '/v1/devices/dev-new/checkin', headers: bearer(replaced.json().token), payload: checkinBody() });
    expect(fresh.statusCode).toBe(200);
  });

  it('answers a check-in with a signed envelope', async () => {
    const body = checkinBody();
    const res = await inject({ method: 'POST', url: '/v1/devices/dev-a/checkin', headers: bearer(deviceToken), payload: body });
    expect(res.statusCode).toBe(200);
    const answer = await verifyAnswer(res.json(), await keyringFromArmored([s.app.signer.publicKey]), { device: 'dev-a', nonce: body.nonce });
    expect(answer.directive.type).toMatch(/^(none|update)$/);
    const bad = await inject({ method: 'POST', url: '/v1/devices/dev-a/checkin', headers: bearer(deviceToken), payload: { ...body, version: 'not-semver' } });
    expectError(bad, 400, 'REQUEST_INVALID');
  });

  it('stores a report once and acknowledges the repeat', async () => {
    const report = reportBody();
    const first = await inject({ method: 'POST', url: '/v1/devices/dev-a/reports', headers: bearer(deviceToken), payload: report });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ id: report.id, duplicate: false });
    const second = await inject({ method: 'POST', url: '/v1/devices/dev-a/reports', headers: bearer(deviceToken), payload: report });
    expect(second.json()).toEqual({ id: report.id, duplicate: true });
    const dev = await inject({ method: 'GET', url: '/v1/devices/dev-a', headers: bearer(s.tokens.ops) });
    expect(dev.json().reports.filter((r: { id: string }) => r.id === report.id)).toHaveLength(1);
  });

  it('shows the fleet and one device', async () => {
    const fleet = await inject({ method: 'GET', url: '/v1/devices', headers: bearer(s.tokens.technician) });
    expect(fleet.statusCode).toBe(200);
    expect(fleet.json().devices.map((d: { id: string }) => d.id)).toEqual(expect.arrayContaining(['dev-a', 'dev-b']));
    const one = await inject({ method: 'GET', url: '/v1/devices/dev-a', headers: bearer(s.tokens.technician) });
    expect(one.statusCode).toBe(200);
    expect(one.json().device).toMatchObject({ id: 'dev-a', compatible: 'x86-gw', channel: 'stable' });
    expectError(await inject({ method: 'GET', url: '/v1/devices/nobody', headers: bearer(s.tokens.ops) }), 404, 'DEVICE_NOT_FOUND');
    expectError(await inject({ method: 'GET', url: '/v1/devices/..%2Fetc', headers: bearer(s.tokens.ops) }), 400, 'REQUEST_INVALID');
  });

  it('queues one rollback request per device', async () => {
    const res = await inject({ method: 'POST', url: '/v1/devices/dev-b/rollback', headers: bearer(s.tokens.technician), payload: {} });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ device: 'dev-b', note: null, delivered: null });
    expectError(await inject({ method: 'POST', url: '/v1/devices/dev-b/rollback', headers: bearer(s.tokens.ops), payload: {} }), 409, 'ROLLBACK_PENDING');
    expectError(await inject({ method: 'POST', url: '/v1/devices/nobody/rollback', headers: bearer(s.tokens.ops), payload: {} }), 404, 'DEVICE_NOT_FOUND');
  });

  it('serves a bundle whole to a device and to ops', async () => {
    for (const token of [deviceToken, s.tokens.ops]) {
      const res = await inject({ method: 'GET', url: `/v1/bundles/${bundle.sha256}`, headers: bearer(token) });
      expect(res.statusCode).toBe(200);
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.headers.etag).toBe(`"${bundle.sha256}"`);
      expect(res.rawPayload.equals(bundleBytes)).toBe(true);
    }
    expectError(await inject({ method: 'GET', url: `/v1/bundles/${'0'.repeat(64)}`, headers: bearer(deviceToken) }), 404, 'BUNDLE_NOT_FOUND');
    expectError(await inject({ method: 'GET', url: '/v1/bundles/xyz', headers: bearer(deviceToken) }), 400, 'REQUEST_INVALID');
  });

  it('serves the OpenAPI document listing every route, without a token', async () => {
    const res = await inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`));
    expect(ops.sort()).toEqual(
      [
        'POST /v1/releases',
        'GET /v1/releases',
        'PUT /v1/channels/{channel}',
        'POST /v1/devices/enroll',
        'POST /v1/devices/{id}/checkin',
        'POST /v1/devices/{id}/reports',
        'GET /v1/devices',
        'GET /v1/devices/{id}',
        'POST /v1/devices/{id}/rollback',
        'GET /v1/bundles/{sha256}',
        'GET /v1/bundles/{sha256}/served',
        'GET /v1/openapi.json',
        'GET /v1/products/{product}/releases/{version}',
        'PUT /v1/devices/{id}/tags/{tag}',
        'DELETE /v1/devices/{id}/tags/{tag}',
        'POST /v1/devices/tags',
        'POST /v1/rollouts',
        'GET /v1/rollouts',
        'GET /v1/rollouts/{id}',
        'POST /v1/rollouts/{id}/pause',
        'POST /v1/rollouts/{id}/resume',
        'POST /v1/rollouts/{id}/abort',
        'PUT /v1/windows/{name}',
        'GET /v1/windows',
        'DELETE /v1/windows/{name}',
        'GET /v1/products/{product}/releases/{version}/delta',
        'GET /v1/events',
        'GET /v1/fleet/devices',
        'GET /v1/fleet/counts',
        'GET /v1/fleet/releases',
        'GET /v1/whoami',
      ].sort(),
    );
    expect(doc.paths['/v1/releases'].post['x-roles']).toEqual(['ops']);
    expectError(await inject({ method: 'GET', url: '/v1/openapi.json?x=1' }), 400, 'REQUEST_INVALID');
  });

  it('answers unknown routes with ROUTE_NOT_FOUND', async () => {
    expectError(await inject({ method: 'GET', url: '/v2/releases' }), 404, 'ROUTE_NOT_FOUND');
    expectError(await inject({ method: 'DELETE', url: '/v1/releases' }), 404, 'ROUTE_NOT_FOUND');
  });
});
