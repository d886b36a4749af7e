/**
 * Uploads that must be refused: each gets a 4xx naming the reason, and afterwards nothing is
 * left in bundles/, tmp/ or the database.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GeneratedKey } from '../../shared/signing.js';
import { craftBundle, imageManifest } from './craft.js';
import { bearer, makeBundle, releaseKey, storageFiles, testServer, type TestServer } from './helpers.js';

let trusted: GeneratedKey;
let stranger: GeneratedKey;
let s: TestServer;
let good: Buffer;

const payload = randomBytes(32 * 1024);

async function upload(body: Buffer | Readable) {
  return s.app.inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' }, payload: body });
}

async function expectNothingStored(): Promise<void> {
  expect(await storageFiles(s.data)).toEqual({ bundles: [], tmp: [] });
  const list = await s.app.inject({ method: 'GET', url: '/v1/releases', headers: bearer(s.tokens.ops) });
  expect(list.json().releases).toEqual([]);
  expect(s.app.store.db.prepare('SELECT count(*) AS n FROM releases').get()).toEqual({ n: 0 });
}

/** Flips one byte at `offset` (negative: from the end). */
function flip(b: Buffer, offset: number): Buffer {
  const c = Buffer.from(b);
  const at = offset < 0 ? c.length + offset : offset;
  c[at] = c[at]! ^ 0x01;
  return c;
}

beforeAll(async () => {
  [trusted, stranger] = await Promise.all([releaseKey('ops'), releaseKey('stranger')]);
  s = await testServer([trusted]);
  good = await craftBundle({ manifest: imageManifest('1.0.0', payload), payloads: [{ name: 'rootfs', bytes: payload }], key: trusted });
});

afterAll(async () => {
  await s.close();
});

const payloadAt = () => good.indexOf(payload.subarray(0, 64));

const CASES: { name: string; code: string; bundle: () => Promise<Buffer> | Buffer }[] = [
  { name: 'a payload byte tampered', code: 'PAYLOAD_HASH_MISMATCH', bundle: () => flip(good, payloadAt() + 1000) },
  { name: 'a manifest byte tampered', code: 'SIGNATURE_BAD', bundle: () => flip(good, 512 + good.subarray(512).indexOf('"gateway"') + 2) },
  {
    name: 'unsigned (no manifest.json.sig entry)',
    code: 'SIGNATURE_MISSING',
    bundle: () => craftBundle({ manifest: imageManifest('1.0.0', payload), payloads: [{ name: 'rootfs', bytes: payload }], key: trusted, omitSignature: true }),
  },
  {
    name: 'signed by a key the server does not trust',
    code: 'SIGNATURE_UNKNOWN_KEY',
    bundle: () => craftBundle({ manifest: imageManifest('1.0.0', payload), payloads: [{ name: 'rootfs', bytes: payload }], key: stranger }),
  },
  { name: 'truncated in the payload', code: 'BUNDLE_TRUNCATED', bundle: () => good.subarray(0, payloadAt() + 5000) },
  { name: 'truncated before the end marker', code: 'BUNDLE_TRUNCATED', bundle: () => good.subarray(0, good.length - 1024) },
  {
    name: 'incompatible with every device (empty compatible list)',
    code: 'MANIFEST_FIELD_VALUE',
    bundle: () => craftBundle({ manifest: imageManifest('1.0.0', payload, { compatible: [] }), payloads: [{ name: 'rootfs', bytes: payload }], key: trusted }),
  },
  {
    name: 'of an incompatible bundle format (format 3)',
    code: 'MANIFEST_FIELD_VALUE',
    bundle: () => craftBundle({ manifest: imageManifest('1.0.0', payload, { format: 3 }), payloads: [{ name: 'rootfs', bytes: payload }], key: trusted }),
  },
  {
    name: 'with a manifest field the format does not define',
    code: 'MANIFEST_UNKNOWN_FIELD',
    bundle: () => craftBundle({ manifest: imageManifest('1.0.0', payload, { installScript: 'rm -rf /' }), payloads: [{ name: 'rootfs', bytes: payload }], key: trusted }),
  },
  { name: 'followed by appended bytes', code: 'BUNDLE_TRAILING_DATA', bundle: () => Buffer.concat([good, Buffer.from('extra')]) },
  { name: 'not a tar at all', code: 'BUNDLE_NOT_TAR', bundle: () => randomBytes(8192) },
  { name: 'empty', code: 'BUNDLE_EMPTY', bundle: () => Buffer.alloc(0) },
];

describe('a bad bundle is refused and leaves nothing behind', () => {
  it.each(CASES)('$name → $code', async ({ code, bundle }) => {
    const res = await upload(await bundle());
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(res.json()).toEqual({ error: code, message: expect.any(String) });
    await expectNothingStored();
  });

  it('also when the bad bytes arrive as a slow stream of small chunks', async () => {
    const bad = flip(good, payloadAt() + 20_000);
    const stream = Readable.from((async function* () {
      for (let at = 0; at < bad.length; at += 1000) {
        await new Promise((r) => setTimeout(r, 1));
        yield bad.subarray(at, at + 1000);
      }
    })());
    const res = await upload(stream);
    expect(res.json()).toMatchObject({ error: 'PAYLOAD_HASH_MISMATCH' });
    await expectNothingStored();
  });

  it('and a good bundle afterwards is stored under its sha256, alone', async () => {
    const res = await upload(good);
    expect(res.statusCode).toBe(201);
    const { sha256 } = res.json();
    expect(await storageFiles(s.data)).toEqual({ bundles: [sha256], tmp: [] });
    expect((await readFile(join(s.data, 'bundles', sha256))).equals(good)).toBe(true);
    // The same version with other bytes is refused, and the stored one is untouched.
    const other = await craftBundle({ manifest: imageManifest('1.0.0', payload, { notes: 'again' }), payloads: [{ name: 'rootfs', bytes: payload }], key: trusted });
    expect((await upload(other)).json()).toMatchObject({ error: 'RELEASE_EXISTS' });
    // The very same bytes again: refused too, and the stored file (same name) survives.
    expect((await upload(good)).json()).toMatchObject({ error: 'RELEASE_EXISTS' });
    expect(await storageFiles(s.data)).toEqual({ bundles: [sha256], tmp: [] });
  });

  it('accepts a bundle made by the writer, of any product, and records its compatible list', async () => {
    const b = await makeBundle(join(s.data, '..', 'w'), trusted, { version: '1.1.0', product: 'ev-charger', compatible: ['ev1', 'ev2'] });
    const res = await upload(await readFile(b.path));
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ version: '1.1.0', sha256: b.sha256, size: b.size, product: 'ev-charger', compatible: ['ev1', 'ev2'] });
  });
});
