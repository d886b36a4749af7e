/**
 * shared/fast-sign.ts writes OpenPGP signature packets by hand (for the server's check-in
 * answers). GnuPG, an independent implementation, must accept them: the server's own key is
 * exported into a fresh GNUPGHOME, a check-in answer is signed exactly as the server signs it,
 * and `gpg --verify` checks the signature over the exact payload bytes — and refuses them once
 * a single byte of the payload or the signature is changed.
 */
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeSigner } from '../../shared/fast-sign.js';
import { newNonce } from '../../shared/protocol.js';
import { loadOrCreateServerKey, type ServerKey } from '../../server/server-key.js';
import { keySigner } from '../../server/signer.js';
import { tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
let home: string;
let key: ServerKey;

function gpg(args: string[]) {
  return execa('gpg', ['--batch', '--status-fd', '1', ...args], { env: { GNUPGHOME: home }, stdin: 'ignore', reject: false });
}

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  home = join(dir, 'gnupg');
  await mkdir(home, { mode: 0o700 });
  await mkdir(join(dir, 'server-data'));
  key = await loadOrCreateServerKey(join(dir, 'server-data'));
  await writeFile(join(dir, 'server.asc'), key.publicKey);
  const imported = await gpg(['--import', join(dir, 'server.asc')]);
  expect(imported.exitCode, imported.stderr).toBe(0);
}, 60_000);
afterAll(() => cleanup());

async function verify(payload: Buffer, signature: Buffer, name: string) {
  await writeFile(join(dir, `${name}.json`), payload);
  await writeFile(join(dir, `${name}.sig`), signature);
  return gpg(['--verify', join(dir, `${name}.sig`), join(dir, `${name}.json`)]);
}

describe('hand-built signatures (shared/fast-sign.ts) under GnuPG', () => {
  it('are made natively for the server key', () => {
    expect(nativeSigner(key.privateKey)).not.toBeNull();
  });

  it('verify with gpg over the exact answer bytes, and fail on one changed byte', async () => {
    const now = new Date();
    const answer = {
      device: 'gw-1',
      nonce: newNonce(),
      issued: now.toISOString(),
      expires: new Date(now.getTime() + 300_000).toISOString(),
      directive: { type: 'none' as const },
    };
    // As the check-in route signs it (server/signer.ts), and the bytes an agent receives.
    const envelope = await keySigner(key).sign(answer);
    const payload = Buffer.from(envelope.payload, 'base64');
    const signature = Buffer.from(envelope.signature, 'base64');
    expect(JSON.parse(payload.toString('utf8'))).toEqual(answer);

    const good = await verify(payload, signature, 'good');
    expect(good.exitCode, good.stderr).toBe(0);
    expect(good.stdout).toMatch(new RegExp(`^\\[GNUPG:\\] VALIDSIG ${key.fingerprint} `, 'm'));

    const tampered = Buffer.from(payload);
    const at = tampered.length - 2;
    tampered[at] = tampered[at]! ^ 0x01;
    const bad = await verify(tampered, signature, 'tampered');
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stdout).toMatch(/^\[GNUPG:\] BADSIG /m);

    const badSig = Buffer.from(signature);
    const sat = badSig.length - 5;
    badSig[sat] = badSig[sat]! ^ 0x01;
    const forged = await verify(payload, badSig, 'forged');
    expect(forged.exitCode).not.toBe(0);
    expect(forged.stdout).not.toMatch(/VALIDSIG/);
  });

  it('verify with gpg over arbitrary binary bytes signed by the native signer itself', async () => {
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    const sign = nativeSigner(key.privateKey)!;
    // A creation time of its own, later than the key's (gpg refuses a signature older than its key).
    const created = new Date(Date.now() + 60_000);
    const r = await verify(data, sign(data, created), 'bytes');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^\\[GNUPG:\\] VALIDSIG ${key.fingerprint} ${created.toISOString().slice(0, 10)} ${Math.floor(created.getTime() / 1000)} `, 'm'));
  });
});
