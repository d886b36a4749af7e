/** Fixtures of the server tests: keys, real signed bundles, an app over a temporary data directory, tokens. */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildBundle } from '../../shared/bundle-writer.js';
import { generateSigningKey, keyringFromArmored, readPrivateKey, type GeneratedKey } from '../../shared/signing.js';
import { buildApp } from '../../server/app.js';
import { resolveConfig, type ServerConfig } from '../../server/config.js';
import type { Role } from '../../server/tokens.js';
import { tempDir } from '../helpers/cli.js';
import { testDatabaseUrl } from '../../scripts/fleet/test-database.js';

/** A release key pair, made once per test file (key generation is the slow part). */
export async function releaseKey(name = 'ops'): Promise<GeneratedKey> {
  return generateSigningKey(`${name} <${name}@example.com>`);
}

/** What a built bundle looks like to a test. */
export interface BuiltBundle {
  path: string;
  version: string;
  sha256: string;
  size: number;
  bytes?: Buffer;
}

/** Builds a real signed bundle with one image payload of `payloadSize` random bytes. */
export async function makeBundle(
  dir: string,
  key: GeneratedKey,
  opts: { version: string; compatible?: string[]; payloadSize?: number; product?: string },
): Promise<BuiltBundle> {
  await mkdir(dir, { recursive: true });
  const image = join(dir, `rootfs-${opts.version}.img`);
  await writeFile(image, randomBytes(opts.payloadSize ?? 64 * 1024));
  const out = join(dir, `bundle-${opts.version}.otab`);
  const r = await buildBundle({
    product: opts.product ?? 'gateway',
    version: opts.version,
    compatible: opts.compatible ?? ['x86-gw'],
    payloads: [{ name: 'rootfs', type: 'image', path: image }],
    key: await readPrivateKey(Buffer.from(key.privateKey), 'test key'),
    out,
  });
  return { path: out, version: opts.version, sha256: r.sha256, size: r.size };
}

/** A config over `data` for tests: loopback, small limits where tests need them. */
export function testConfig(data: string, over: Partial<Record<keyof ServerConfig, unknown>> = {}): ServerConfig {
  // The PostgreSQL pass (OTAAB_TEST_DATABASE_URL): a fresh schema per data directory.
  const databaseUrl = testDatabaseUrl(data);
  return resolveConfig([
    { source: 'file', name: 'test', values: { data, host: '127.0.0.1', port: 0, logLevel: 'silent', ...(databaseUrl ? { databaseUrl } : {}), ...over }, base: data },
  ]);
}

/** A test server: the app, its data directory, and a token per role. */
export interface TestServer {
  app: FastifyInstance;
  data: string;
  tokens: Record<Exclude<Role, 'device'>, string>;
  close(): Promise<void>;
}

/** Builds an app over a fresh data directory trusting `keys`, with an ops, technician and enroll token. */
export async function testServer(keys: GeneratedKey[], over: Partial<Record<keyof ServerConfig, unknown>> = {}): Promise<TestServer> {
  const tmp = await tempDir('otaab-server-');
  const data = join(tmp.dir, 'data');
  const app = await buildApp({ config: testConfig(data, over), keyring: await keyringFromArmored(keys.map((k) => k.publicKey)), logger: false });
  const t = app.store.tokens;
  const tokens = { ops: t.create('ops', 'ops').token, technician: t.create('technician', 'tech').token, enroll: t.create('enroll', 'factory').token };
  return {
    app,
    data,
    tokens,
    async close() {
      await app.close();
      await tmp.cleanup();
    },
  };
}

/** Authorization header for a token. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** Enrolls a device through the API and returns its token. */
export async function enroll(s: TestServer, id: string, compatible = 'x86-gw', channel?: string): Promise<string> {
  const res = await s.app.inject({
    method: 'POST',
    url: '/v1/devices/enroll',
    headers: bearer(s.tokens.enroll),
    payload: { id, compatible, ...(channel ? { channel } : {}) },
  });
  if (res.statusCode !== 201) throw new Error(`enroll ${id}: ${res.statusCode} ${res.body}`);
  return (res.json() as { token: string }).token;
}

/** Files in a data directory's bundles/ and tmp/. */
export async function storageFiles(data: string): Promise<{ bundles: string[]; tmp: string[] }> {
  return { bundles: await readdir(join(data, 'bundles')), tmp: await readdir(join(data, 'tmp')) };
}
