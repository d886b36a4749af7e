/**
 * Fixtures shared by the parts of the reliability suite: a work directory, release keys,
 * signed releases built from trees or images (with the digest a slot must show once it holds
 * them), a real `ota-server` with a token per role, enrollment, and a small worker pool.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { buildBundle } from '../../shared/bundle-writer.js';
import { sha256Hex } from '../../shared/hashing.js';
import { generateSigningKey, readPrivateKey } from '../../shared/signing.js';
import { ServerProcess, api, createToken } from '../fleet/server.js';
import { treeDigest, type ReleaseContent } from './digest.js';

/** Repository root (this file is compiled to dist/scripts/reliability). */
export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '..');
/** The compiled ops CLI. */
export const RELEASE_CLI = join(ROOT, 'dist', 'release', 'cli.js');
/** The device type every simulated device of the suite has. */
export const COMPATIBLE = 'x86-gw';

/** A fresh directory under the system temp dir. */
export async function workDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `otaab-rel-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A release key: the private key (in memory and as a file, for ota-release) and its public file. */
export interface ReleaseKey {
  key: PrivateKey;
  keyPath: string;
  pubPath: string;
}

/** Makes an Ed25519 release key in `dir`. */
export async function makeReleaseKey(dir: string, name = 'release'): Promise<ReleaseKey> {
  await mkdir(dir, { recursive: true });
  const k = await generateSigningKey(`${name} <${name}@example.com>`);
  const keyPath = join(dir, `${name}.key`);
  const pubPath = join(dir, `${name}.pub`);
  await writeFile(keyPath, k.privateKey, { mode: 0o600 });
  await writeFile(pubPath, k.publicKey);
  return { key: await readPrivateKey(Buffer.from(k.privateKey), keyPath), keyPath, pubPath };
}

/** A built bundle and what it puts into a slot. */
export interface Release {
  version: string;
  path: string;
  sha256: string;
  size: number;
  content: ReleaseContent;
}

/** Options of a release. */
export interface ReleaseOptions {
  version: string;
  /** A healthy release ships /etc/healthy (fs) or starts with HEALTHY (raw): the devices' health check looks for it. */
  healthy: boolean;
  /** Bytes of incompressible bulk in the release, so that transfers have a size (default 64 KiB). */
  bulk?: number;
}

/** A root file system release (one `archive` payload) for fs slots, built from a fresh tree. */
export async function fsRelease(dir: string, key: ReleaseKey, opts: ReleaseOptions): Promise<Release> {
  const tree = join(dir, `tree-${opts.version}`);
  await mkdir(join(tree, 'etc'), { recursive: true });
  await mkdir(join(tree, 'usr', 'bin'), { recursive: true });
  await writeFile(join(tree, 'etc', 'os-release'), `NAME=gateway\nVERSION=${opts.version}\n`);
  if (opts.healthy) await writeFile(join(tree, 'etc', 'healthy'), `release ${opts.version}\n`);
  await writeFile(join(tree, 'usr', 'bin', 'gateway-app'), `#!/bin/sh\necho "gateway ${opts.version}"\n`);
  await chmod(join(tree, 'usr', 'bin', 'gateway-app'), 0o755);
  await writeFile(join(tree, 'usr', 'bulk.bin'), randomBytes(opts.bulk ?? 64 * 1024));
  const path = join(dir, `gateway-${opts.version}.otab`);
  const r = await buildBundle({ product: 'gateway', version: opts.version, compatible: [COMPATIBLE], payloads: [{ name: 'rootfs', type: 'archive', path: tree }], key: key.key, out: path });
  return { version: opts.version, path, sha256: r.sha256, size: r.size, content: { kind: 'fs', digest: await treeDigest(tree) } };
}

/** A raw image release (one `image` payload) for raw slots. */
export async function rawRelease(dir: string, key: ReleaseKey, opts: ReleaseOptions): Promise<Release> {
  const head = Buffer.from(`${opts.healthy ? 'HEALTHY' : 'BROKEN!'} ${opts.version}\n`);
  const image = Buffer.concat([head, randomBytes(opts.bulk ?? 64 * 1024)]);
  const imagePath = join(dir, `rootfs-${opts.version}.img`);
  await mkdir(dir, { recursive: true });
  await writeFile(imagePath, image);
  const path = join(dir, `gateway-${opts.version}.otab`);
  const r = await buildBundle({ product: 'gateway', version: opts.version, compatible: [COMPATIBLE], payloads: [{ name: 'rootfs', type: 'image', path: imagePath }], key: key.key, out: path });
  return { version: opts.version, path, sha256: r.sha256, size: r.size, content: { kind: 'raw', length: image.length, sha256: sha256Hex(image) } };
}

/** Tokens of the three roles an admin hands out. */
export interface RoleTokens {
  ops: string;
  technician: string;
  enroll: string;
}

/** A running server with its data directory and tokens. */
export interface Server {
  proc: ServerProcess;
  data: string;
  tokens: RoleTokens;
  /** The server's public key file, for devices. */
  serverKey: string;
}

/** Starts `ota-server` on loopback over a fresh data directory in `dir`, trusting `releaseKeys`. */
export async function startServer(dir: string, releaseKeys: string[], args: string[] = []): Promise<Server> {
  const data = join(dir, 'server-data');
  const proc = await ServerProcess.start({ data, releaseKeys, args });
  const tokens = {
    ops: await createToken(data, 'ops', 'reliability-ops'),
    technician: await createToken(data, 'technician', 'reliability-tech'),
    enroll: await createToken(data, 'enroll', 'reliability-factory'),
  };
  return { proc, data, tokens, serverKey: join(data, 'server-key.pub') };
}

/** Enrolls `id` through the API; returns its device token. */
export async function enrollDevice(server: Server, id: string, channel?: string): Promise<string> {
  const r = await api<{ token: string }>(server.proc.url, server.tokens.enroll, 'POST', '/v1/devices/enroll', { id, compatible: COMPATIBLE, ...(channel ? { channel } : {}) });
  return r.token;
}

/** Runs `fn` over `items` with at most `concurrency` at a time; results in input order. */
export async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return out;
}

/** Seconds since `t0` (a Date.now()). */
export const since = (t0: number): number => (Date.now() - t0) / 1000;
