import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleReader } from '../../shared/bundle-reader.js';
import { buildBundle } from '../../shared/bundle-writer.js';
import { encodeIndex, packIndex, unpackIndex } from '../../shared/chunk-index.js';
import { indexRawImage } from '../../shared/chunk-build.js';
import { isOtaError } from '../../shared/errors.js';
import { validateManifest } from '../../shared/manifest.js';
import { loadKeyring, type Keyring } from '../../shared/signing.js';
import { verifyBundleFile } from '../../shared/verify.js';
import { makeKey, type TestKey } from '../agent/helpers/keys.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { craftIndexed } from './craft.js';

let dir: string;
let cleanup: () => Promise<void>;
let key: TestKey;
let keyring: Keyring;
let image: Buffer;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    if (isOtaError(err)) return err.code;
    throw err;
  }
  return undefined;
}

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  key = await makeKey(dir);
  keyring = await loadKeyring([key.pubPath]);
  image = Buffer.concat([randomBytes(700_000), Buffer.alloc(500_000, 'abcdefgh')]);
  await writeFile(join(dir, 'img'), image);
});
afterAll(() => cleanup());

describe('bundles with a chunk index (format 2)', () => {
  it.each([false, true])('builds, reads and verifies an indexed image (gzip %s)', async (gzip) => {
    const out = join(dir, `b-${gzip}.otab`);
    const r = await buildBundle({ product: 'p', version: '1.0.0', compatible: ['c'], key: key.key, out, index: {}, payloads: [{ name: 'rootfs', type: 'image', path: join(dir, 'img'), gzip }] });
    expect(r.manifest.format).toBe(2);
    expect(r.manifest.modules[0]!.index?.size).toBeGreaterThan(0);
    const report = await verifyBundleFile(out, keyring);
    expect(report.payloads[0]!.unpackedBytes).toBe(image.length);
    const reader = await BundleReader.open(createReadStream(out), { keyring });
    const ix = unpackIndex((await reader.indexes()).get('rootfs')!, 'ix');
    expect(ix.imageSize).toBe(image.length);
    expect(ix.storage).toBe(gzip ? 'gzip' : 'raw');
  });

  it('still builds and verifies format 1 bundles without an index', async () => {
    const out = join(dir, 'v1.otab');
    const r = await buildBundle({ product: 'p', version: '1.0.0', compatible: ['c'], key: key.key, out, payloads: [{ name: 'rootfs', type: 'image', path: join(dir, 'img') }] });
    expect(r.manifest.format).toBe(1);
    expect((await verifyBundleFile(out, keyring)).payloads[0]!.unpackedBytes).toBe(image.length);
  });

  it('refuses an index in a format 1 manifest, and on anything but an image', () => {
    const base = { format: 1, product: 'p', version: '1.0.0', compatible: ['c'], created: '2026-12-01T00:00:00Z' };
    const mod = { name: 'r', type: 'image', sha256: 'a'.repeat(64), size: 1, index: { sha256: 'b'.repeat(64), size: 10 } };
    expect(() => validateManifest({ ...base, modules: [mod] })).toThrow(/must be 2/);
    expect(validateManifest({ ...base, format: 2, modules: [mod] }).format).toBe(2);
    expect(() => validateManifest({ ...base, format: 2, modules: [{ ...mod, type: 'archive', unpackedSize: 1 }] })).toThrow(/only allowed for an image/);
  });

  it('refuses an index entry whose bytes are not the signed ones (INDEX_HASH_MISMATCH)', async () => {
    const ix = (await indexRawImage(join(dir, 'img'))).index;
    const out = join(dir, 'tampered.otab');
    await craftIndexed(out, key.key, '1.0.0', image, packIndex(ix), { indexSha256: 'c'.repeat(64) });
    expect(await codeOf(verifyBundleFile(out, keyring))).toBe('INDEX_HASH_MISMATCH');
  });

  it('refuses a signed index that does not describe its payload (INDEX_CHUNK_MISMATCH)', async () => {
    const ix = (await indexRawImage(join(dir, 'img'))).index;
    const other = Buffer.from(image);
    const at = ix.chunks.at(1)!.offset + 3;
    other[at] = other[at]! ^ 0xff;
    const out = join(dir, 'lying.otab');
    await craftIndexed(out, key.key, '1.0.0', other, packIndex({ ...ix, imageSha256: require256(other) }));
    expect(await codeOf(verifyBundleFile(out, keyring))).toBe('INDEX_CHUNK_MISMATCH');
    const out2 = join(dir, 'overlap.otab');
    const c = ix.chunks.map((x, i) => (i === 1 ? { ...x, offset: x.offset - 1, storedOffset: x.storedOffset - 1 } : x));
    await craftIndexed(out2, key.key, '1.0.0', image, packIndex({ ...ix, chunks: c }));
    expect(await codeOf(verifyBundleFile(out2, keyring))).toBe('INDEX_OVERLAP');
    expect(encodeIndex(ix).length).toBeGreaterThan(0);
  });

  it('ota-release build writes an index by default, and none with --no-index', async () => {
    const env = { PATH: process.env.PATH ?? '' };
    expect((await runCli('release', ['keygen', '--out', join(dir, 'cli')], { env })).code).toBe(0);
    const args = (out: string): string[] => ['build', '--key', join(dir, 'cli.key'), '--product', 'p', '--version', '1.0.0', '--compatible', 'c', '--image', `rootfs=${join(dir, 'img')}`, '--gzip', '-o', out];
    const r1 = await runCli('release', args(join(dir, 'cli1.otab')), { env });
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await runCli('release', [...args(join(dir, 'cli2.otab')), '--no-index'], { env });
    expect(r2.code, r2.stderr).toBe(0);
    const ring = await loadKeyring([join(dir, 'cli.pub')]);
    expect((await verifyBundleFile(join(dir, 'cli1.otab'), ring)).bundle.manifest.modules[0]!.index).toBeDefined();
    expect((await verifyBundleFile(join(dir, 'cli2.otab'), ring)).bundle.manifest.format).toBe(1);
    const r3 = await runCli('release', [...args(join(dir, 'cli3.otab')), '--chunk-kib', '16'], { env });
    expect(r3.code, r3.stderr).toBe(0);
    const reader = await BundleReader.open(createReadStream(join(dir, 'cli3.otab')), { keyring: ring });
    expect(unpackIndex((await reader.indexes()).get('rootfs')!, 'ix').params).toEqual({ min: 4096, avg: 16384, max: 65536 });
    const r4 = await runCli('release', [...args(join(dir, 'cli4.otab')), '--chunk-kib', '48'], { env });
    expect(r4.code).toBe(2);
    expect(r4.stderr).toContain('--chunk-kib must be a power of two');
  });
});

function require256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
