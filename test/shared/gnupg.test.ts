/**
 * Interoperability with the independent tools: bundles assembled by hand with GNU tar and
 * `gpg --detach-sign` must verify, and our bundles must list with `tar -tvf` and verify with gpg.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
let gnupg: string;

async function gpg(args: string[], cwd = dir) {
  return execa('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { cwd, env: { GNUPGHOME: gnupg }, stdin: 'ignore' });
}

beforeAll(async () => {
  const t = await tempDir();
  dir = t.dir;
  cleanup = t.cleanup;
  gnupg = join(dir, 'gnupg');
  await mkdir(gnupg, { mode: 0o700 });
  await gpg(['--quick-gen-key', 'Ed Ops <ed@ops.example>', 'ed25519', 'sign', 'never']);
  await gpg(['--quick-gen-key', 'Rsa Ops <rsa@ops.example>', 'rsa3072', 'sign', 'never']);
  await writeFile(join(dir, 'ed.pub'), (await gpg(['--armor', '--export', 'ed@ops.example'])).stdout);
  await writeFile(join(dir, 'rsa.pub'), (await gpg(['--export', 'rsa@ops.example'], dir)).stdout);
  // Binary export: write it through gpg's --output so the bytes are not mangled as text.
  await gpg(['--output', join(dir, 'rsa.gpg'), '--export', 'rsa@ops.example']);
}, 120_000);
afterAll(() => cleanup());

async function handBuilt(name: string, signer: string, format: 'ustar' | 'pax', armor: boolean): Promise<string> {
  const work = join(dir, name);
  await mkdir(join(work, 'payloads'), { recursive: true });
  const rootfs = Buffer.alloc(300_000);
  for (let i = 0; i < rootfs.length; i++) rootfs[i] = (i * 31) % 256;
  await writeFile(join(work, 'payloads', 'rootfs'), rootfs);
  const manifest = {
    format: 1,
    product: 'gateway',
    version: '2026.11.2',
    compatible: ['rpi-cm4', 'x86-gw'],
    created: '2026-11-21T10:00:00Z',
    modules: [{ name: 'rootfs', type: 'image', sha256: createHash('sha256').update(rootfs).digest('hex'), size: rootfs.length, compression: 'none' }],
    notes: 'assembled by hand',
  };
  await writeFile(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2));
  await gpg(['--local-user', signer, ...(armor ? ['--armor'] : []), '--output', 'manifest.json.sig', '--detach-sign', 'manifest.json'], work);
  const out = join(dir, `${name}.otab`);
  await execa('tar', [`--format=${format}`, '-cf', out, 'manifest.json', 'manifest.json.sig', 'payloads/rootfs'], { cwd: work });
  return out;
}

describe('bundles assembled by hand with GNU tar and gpg --detach-sign', () => {
  it('verifies an Ed25519 (EdDSA) signature, binary, ustar', async () => {
    const b = await handBuilt('ed-ustar', 'ed@ops.example', 'ustar', false);
    const r = await runCli('release', ['verify', b, '--keyring', join(dir, 'ed.pub')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(Ed25519, Ed Ops <ed@ops.example>)');
  });

  it('verifies an RSA-3072 signature, armored, pax, against a binary exported key', async () => {
    const b = await handBuilt('rsa-pax', 'rsa@ops.example', 'pax', true);
    const r = await runCli('release', ['verify', b, '--keyring', join(dir, 'rsa.gpg')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('RSA-3072');
  });

  it('refuses the RSA bundle when only the Ed25519 key is trusted', async () => {
    const b = join(dir, 'rsa-pax.otab');
    const r = await runCli('release', ['verify', b, '--keyring', join(dir, 'ed.pub')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SIGNATURE_UNKNOWN_KEY/);
  });
});

describe('bundles made by ota-release build, checked with GNU tar and gpg', () => {
  it('lists in the order of the design and its signature verifies with gpg', async () => {
    const keyPrefix = join(dir, 'release');
    expect((await runCli('release', ['keygen', '--out', keyPrefix])).code).toBe(0);
    await mkdir(join(dir, 'mod', 'bin'), { recursive: true });
    await writeFile(join(dir, 'mod', 'bin', 'linky2influx'), '#!/bin/sh\necho linky\n', { mode: 0o755 });
    await writeFile(join(dir, 'rootfs.img'), Buffer.alloc(200_000, 3));
    const out = join(dir, 'built.otab');
    const b = await runCli('release', [
      'build', '--key', `${keyPrefix}.key`, '--product', 'gateway', '--version', '1.2.3', '--compatible', 'x86-gw',
      '--image', `rootfs=${join(dir, 'rootfs.img')}`, '--module', `linky2influx@1.4.2=${join(dir, 'mod')}:/opt/modules/linky2influx`, '-o', out,
    ]);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const listing = (await execa('tar', ['-tf', out])).stdout.split('\n');
    expect(listing).toEqual(['manifest.json', 'manifest.json.sig', 'index/rootfs', 'payloads/rootfs', 'payloads/linky2influx']);
    expect((await execa('tar', ['-tvf', out])).stdout).toMatch(/payloads\/rootfs/);

    const x = join(dir, 'extracted');
    await mkdir(x);
    await execa('tar', ['-xf', out, '-C', x, 'manifest.json', 'manifest.json.sig']);
    await gpg(['--import', `${keyPrefix}.pub`]);
    const v = await gpg(['--status-fd', '1', '--verify', join(x, 'manifest.json.sig'), join(x, 'manifest.json')]);
    expect(v.stdout).toMatch(/\[GNUPG:\] GOODSIG /);
    expect(v.stdout).toMatch(/\[GNUPG:\] VALIDSIG /);

    // The reported sha256 is that of the file as re-read from disk.
    const reported = /sha256 ([0-9a-f]{64})/.exec(b.stdout)?.[1];
    expect(reported).toBe(createHash('sha256').update(await readFile(out)).digest('hex'));
  });
});
