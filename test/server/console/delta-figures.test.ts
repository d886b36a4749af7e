/**
 * GET /v1/products/:product/releases/:version/delta: the delta figures a console shows are
 * exactly what `ota-release delta-report` computes from the same bundles, for the earlier
 * releases of the product; they are computed once per pair of bundles and kept in a bounded cache.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../../shared/bundle-writer.js';
import { deltaReport } from '../../../shared/delta/report.js';
import { keyringFromArmored, readPrivateKey, type GeneratedKey } from '../../../shared/signing.js';
import { DeltaFigures, previousReleases } from '../../../server/views/delta-figures.js';
import { pseudoRandom } from '../../agent/helpers/bundles.js';
import { tempDir } from '../../helpers/cli.js';
import { bearer, releaseKey, testServer, type TestServer } from '../helpers.js';

const SIZE = 1024 * 1024;
let key: GeneratedKey;
let s: TestServer;
let tmp: Awaited<ReturnType<typeof tempDir>>;
const bundles: Record<string, { path: string; sha256: string }> = {};

/** 1.0.0, 1.1.0 (a few regions changed), 1.2.0 (more changed); 1.3.0 without an index; 1.0.0 of another product. */
async function build(version: string, image: Buffer, index = true, product = 'gateway'): Promise<void> {
  const img = join(tmp.dir, `${product}-${version}.img`);
  await writeFile(img, image);
  const out = join(tmp.dir, `${product}-${version}.otab`);
  const r = await buildBundle({
    product,
    version,
    compatible: ['x86-gw'],
    payloads: [{ name: 'rootfs', type: 'image', path: img, gzip: true }],
    key: await readPrivateKey(Buffer.from(key.privateKey), 'test key'),
    out,
    ...(index ? { index: {} } : {}),
  });
  const res = await s.app.inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' }, payload: await readFile(out) });
  expect(res.statusCode, res.body).toBe(201);
  bundles[`${product} ${version}`] = { path: out, sha256: r.sha256 };
}

function edit(base: Buffer, at: number, len: number, seed: number): Buffer {
  const img = Buffer.from(base);
  pseudoRandom(len, seed).copy(img, at);
  return img;
}

beforeAll(async () => {
  key = await releaseKey();
  s = await testServer([key]);
  tmp = await tempDir('otaab-delta-figures-');
  const v1 = pseudoRandom(SIZE, 5);
  const v2 = edit(v1, 300_000, 40_000, 11);
  const v3 = edit(v2, 700_000, 200_000, 12);
  await build('1.0.0', v1);
  await build('1.1.0', v2);
  await build('1.2.0', v3);
  await build('1.3.0', edit(v3, 10_000, 1000, 13), false);
  await build('1.0.0', v1, true, 'charger');
}, 120_000);

afterAll(async () => {
  await s?.close();
  await tmp?.cleanup();
});

interface Answer {
  product: string;
  version: string;
  sha256: string;
  indexed: boolean;
  deltas: { from: string; fromSha256: string; report: { wireBytes: number; bundleBytes: number } | null; error: { code: string; message: string } | null }[];
}

const get = (url: string, token = s.tokens.ops) => s.app.inject({ method: 'GET', url, headers: bearer(token) });

describe('GET /v1/products/:product/releases/:version/delta', () => {
  it("answers delta-report's own figures for each earlier release of the product, newest first", async () => {
    const res = await get('/v1/products/gateway/releases/1.2.0/delta');
    expect(res.statusCode, res.body).toBe(200);
    const a = res.json() as Answer;
    expect(a).toMatchObject({ product: 'gateway', version: '1.2.0', sha256: bundles['gateway 1.2.0']!.sha256, indexed: true });
    expect(a.deltas.map((d) => d.from)).toEqual(['1.1.0', '1.0.0']);
    const keyring = await keyringFromArmored([key.publicKey]);
    for (const d of a.deltas) {
      expect(d.error).toBeNull();
      expect(d.fromSha256).toBe(bundles[`gateway ${d.from}`]!.sha256);
      expect(d.report).toEqual({ ...(await deltaReport(bundles[`gateway ${d.from}`]!.path, bundles['gateway 1.2.0']!.path, keyring)) });
    }
    // From the release just before, a device fetches a fraction of the bundle.
    expect(a.deltas[0]!.report!.wireBytes).toBeLessThan(a.deltas[0]!.report!.bundleBytes * 0.4);
    expect(a.deltas[1]!.report!.wireBytes).toBeGreaterThan(a.deltas[0]!.report!.wireBytes);
  });

  it('takes one earlier release with ?from= and a number of them with ?previous=', async () => {
    const one = (await get('/v1/products/gateway/releases/1.2.0/delta?from=1.0.0')).json() as Answer;
    expect(one.deltas.map((d) => d.from)).toEqual(['1.0.0']);
    const first = (await get('/v1/products/gateway/releases/1.2.0/delta?previous=1')).json() as Answer;
    expect(first.deltas.map((d) => d.from)).toEqual(['1.1.0']);
    const later = await get('/v1/products/gateway/releases/1.1.0/delta?from=1.2.0');
    expect(later.statusCode).toBe(404);
    expect(later.json()).toMatchObject({ error: 'RELEASE_NOT_FOUND' });
    expect((await get('/v1/products/gateway/releases/1.2.0/delta?previous=0')).statusCode).toBe(400);
  });

  it('says a release without a chunk index has no delta, and that the first release has nothing to compare with', async () => {
    expect((await get('/v1/products/gateway/releases/1.3.0/delta')).json()).toMatchObject({ indexed: false, deltas: [] });
    expect((await get('/v1/products/gateway/releases/1.0.0/delta')).json()).toMatchObject({ indexed: true, deltas: [] });
    // Another product's releases are not "earlier releases".
    expect((await get('/v1/products/charger/releases/1.0.0/delta')).json()).toMatchObject({ deltas: [] });
    const missing = await get('/v1/products/gateway/releases/9.9.9/delta');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'RELEASE_NOT_FOUND' });
  });

  it('lets technicians look, refuses other roles, and is in the OpenAPI document', async () => {
    expect((await get('/v1/products/gateway/releases/1.1.0/delta', s.tokens.technician)).statusCode).toBe(200);
    expect((await get('/v1/products/gateway/releases/1.1.0/delta', s.tokens.enroll)).statusCode).toBe(403);
    expect((await s.app.inject({ method: 'GET', url: '/v1/products/gateway/releases/1.1.0/delta' })).statusCode).toBe(401);
    const doc = (await s.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as { paths: Record<string, Record<string, { 'x-roles': string[] }>> };
    expect(doc.paths['/v1/products/{product}/releases/{version}/delta']?.get?.['x-roles']).toEqual(['ops', 'technician']);
  });
});

describe('DeltaFigures', () => {
  it('computes a pair once (concurrent asks share it), keeps at most its bound, and retries a missing bundle', async () => {
    const keyring = await keyringFromArmored([key.publicKey]);
    const reads: string[] = [];
    let missing = true;
    const figures = new DeltaFigures(keyring, (sha) => {
      reads.push(sha);
      const found = Object.values(bundles).find((b) => b.sha256 === sha)!;
      return missing && sha === bundles['gateway 1.0.0']!.sha256 ? join(tmp.dir, 'gone') : found.path;
    }, 2);
    const rel = (v: string) => ({ product: 'gateway', version: v, sha256: bundles[`gateway ${v}`]!.sha256, compatible: ['x86-gw'] });
    const lost = await figures.figure(rel('1.0.0'), rel('1.1.0'));
    expect(lost.error).toMatchObject({ code: 'BUNDLE_NOT_FOUND' });
    expect(figures.size).toBe(0);
    missing = false;
    const [a, b] = await Promise.all([figures.figure(rel('1.0.0'), rel('1.1.0')), figures.figure(rel('1.0.0'), rel('1.1.0'))]);
    expect(a).toEqual(b);
    expect(a.report).not.toBeNull();
    expect(figures.computed).toBe(2);
    await figures.figure(rel('1.0.0'), rel('1.1.0'));
    expect(figures.computed).toBe(2);
    await figures.figure(rel('1.1.0'), rel('1.2.0'));
    await figures.figure(rel('1.0.0'), rel('1.2.0'));
    expect(figures.size).toBe(2);
    // A bundle without an index answers its error, kept like a figure.
    const none = await figures.figure(rel('1.2.0'), rel('1.3.0'));
    expect(none.error).toMatchObject({ code: 'MANIFEST_FIELD_VALUE' });
    expect(figures.computed).toBe(5);
  });

  it('picks the earlier releases of the same product that share a device type, newest first', () => {
    const r = (product: string, version: string, compatible = ['x86-gw']) => ({ product, version, sha256: '0'.repeat(64), compatible });
    const all = [r('gateway', '1.0.0'), r('gateway', '1.10.0'), r('gateway', '1.9.0'), r('gateway', '2.0.0'), r('charger', '1.5.0'), r('gateway', '1.8.0', ['rpi-cm4'])];
    expect(previousReleases(r('gateway', '1.10.0'), all, 3).map((x) => x.version)).toEqual(['1.9.0', '1.0.0']);
  });
});
