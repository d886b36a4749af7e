/**
 * The native check of Ed25519 signatures (shared/pgp-verify.ts) against openpgp.js and GnuPG:
 * what it accepts, openpgp.js accepts with the same signer; what it cannot judge alike
 * (expiry, revocation, more user ids, subkeys, text signatures, SHA-1) it declines, and
 * openpgp.js answers as before. Mutated signatures and keys never make it throw, and it never
 * accepts one openpgp.js refuses.
 */
import { execa } from 'execa';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dearmor, nativeKeys, verifyNative as verifyBy, type NativeKey, type NativeSigner } from '../../shared/pgp-verify.js';
import { Keyring, generateSigningKey, keyringFromArmored, readPrivateKey, signDetached, verifyDetached, type SignerInfo } from '../../shared/signing.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
let home: string;

async function gpg(args: string[], input?: Buffer) {
  return execa('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
    env: { GNUPGHOME: home },
    encoding: 'buffer',
    // Binary output: a last byte 0x0a is data, not a line end to strip.
    stripFinalNewline: false,
    ...(input ? { input } : { stdin: 'ignore' }),
  });
}
const exported = async (who: string, armor = true): Promise<Buffer> => Buffer.from((await gpg([...(armor ? ['--armor'] : []), '--export', who])).stdout);
const detach = async (who: string, data: Buffer, extra: string[] = []): Promise<Buffer> => Buffer.from((await gpg(['--local-user', who, ...extra, '--detach-sign', '--output', '-'], data)).stdout);
const fpr = async (who: string): Promise<string> => /^fpr:+([0-9A-F]{40}):/m.exec(String(Buffer.from((await gpg(['--with-colons', '--list-keys', who])).stdout)))![1]!;

/** The same check through openpgp.js only: a keyring with no native keys. */
async function viaOpenpgp(data: Buffer, sig: Buffer, key: Buffer, now?: Date): Promise<SignerInfo> {
  return verifyDetached(data, sig, await Keyring.of([{ bytes: key, source: 'k' }], { native: false }), 'x', now);
}

/** verifyNative over a list of keys, found by key id. */
const verifyNative = (d: Uint8Array, sig: Uint8Array, keys: readonly NativeKey[], now: Date): NativeSigner | undefined => verifyBy(d, sig, (id) => keys.find((k) => k.keyId === id), now);

const data = Buffer.from('{"format":2,"product":"gw","version":"1.2.3"}\n');

beforeAll(async () => {
  const t = await tempDir();
  dir = t.dir;
  cleanup = t.cleanup;
  home = join(dir, 'gnupg');
  await mkdir(home, { mode: 0o700 });
  await gpg(['--quick-gen-key', 'Ed Ops <ed@ops.example>', 'ed25519', 'sign', 'never']);
  await gpg(['--quick-gen-key', 'Exp Ops <exp@ops.example>', 'ed25519', 'sign', '2y']);
  await gpg(['--quick-gen-key', 'Two Ops <two@ops.example>', 'ed25519', 'sign', 'never']);
  await gpg(['--quick-add-uid', 'two@ops.example', 'Two Again <again@ops.example>']);
  await gpg(['--quick-gen-key', 'Sub Ops <sub@ops.example>', 'ed25519', 'cert', 'never']);
  await gpg(['--quick-add-key', await fpr('sub@ops.example'), 'ed25519', 'sign', 'never']);
  await gpg(['--quick-gen-key', 'Rev Ops <rev@ops.example>', 'ed25519', 'sign', 'never']);
}, 120_000);
afterAll(() => cleanup());

describe('native Ed25519 verification', () => {
  it('reads a key of ota-release keygen and accepts its signatures with the signer openpgp.js names', async () => {
    const g = await generateSigningKey('Release <rel@otaab.example>');
    const key = await readPrivateKey(Buffer.from(g.privateKey), 'k');
    const keys = nativeKeys(Buffer.from(g.publicKey));
    expect(keys?.map((k) => k.fingerprint)).toEqual([g.fingerprint]);
    const sig = await signDetached(data, key);
    expect(verifyNative(data, sig, keys!, new Date())?.key.fingerprint).toBe(g.fingerprint);
    const ring = await keyringFromArmored([g.publicKey]);
    expect(ring.native).toHaveLength(1);
    expect(await verifyDetached(data, sig, ring, 'x')).toEqual(await viaOpenpgp(data, sig, Buffer.from(g.publicKey)));
  });

  it('reads GnuPG keys, armored and binary, and accepts gpg --detach-sign, binary and armored, as openpgp.js does', async () => {
    const want = await fpr('ed@ops.example');
    for (const armor of [true, false]) {
      const key = await exported('ed@ops.example', armor);
      const keys = nativeKeys(key);
      expect(keys?.map((k) => k.fingerprint)).toEqual([want]);
      for (const extra of [[], ['--armor'], ['--digest-algo', 'SHA256'], ['--digest-algo', 'SHA384']]) {
        const sig = await detach('ed@ops.example', data, extra);
        const mine = verifyNative(data, sig, keys!, new Date());
        expect(mine?.key.fingerprint).toBe(want);
        const ring = await Keyring.of([{ bytes: key, source: 'k' }]);
        expect(await verifyDetached(data, sig, ring, 'x')).toEqual(await viaOpenpgp(data, sig, key));
      }
    }
  });

  it('reads a keyring file of several keys and finds each signer', async () => {
    const both = Buffer.concat([dearmor(await exported('ed@ops.example'), 'PUBLIC KEY BLOCK')!, dearmor(Buffer.from((await generateSigningKey('x')).publicKey), 'PUBLIC KEY BLOCK')!]);
    const keys = nativeKeys(both);
    expect(keys).toHaveLength(2);
    expect(verifyNative(data, await detach('ed@ops.example', data), keys!, new Date())?.key.fingerprint).toBe(await fpr('ed@ops.example'));
  });

  it('declines a changed byte, and openpgp.js refuses it as before', async () => {
    const key = await exported('ed@ops.example');
    const sig = await detach('ed@ops.example', data);
    const changed = Buffer.from(data);
    changed[3] = changed[3]! ^ 1;
    expect(verifyNative(changed, sig, nativeKeys(key)!, new Date())).toBeUndefined();
    await expect(verifyDetached(changed, sig, await Keyring.of([{ bytes: key, source: 'k' }]), 'x')).rejects.toMatchObject({ code: 'SIGNATURE_BAD' });
  });

  it('declines keys whose answer depends on more than the signature: expiry, two user ids, revocation', async () => {
    expect(nativeKeys(await exported('exp@ops.example'))).toBeUndefined();
    expect(nativeKeys(await exported('two@ops.example'))).toBeUndefined();
    // Revoked: gpg's revocation certificate imported, the key exported with it.
    const revFpr = await fpr('rev@ops.example');
    const sig = await detach('rev@ops.example', data);
    const before = await exported('rev@ops.example');
    expect(nativeKeys(before)).toHaveLength(1);
    await gpg(['--import', join(home, 'openpgp-revocs.d', `${revFpr}.rev`)]).catch(async () => {
      // The stored certificate starts with a colon to stop accidental imports: strip it.
      const text = (await readFile(join(home, 'openpgp-revocs.d', `${revFpr}.rev`), 'utf8')).replace(/^:-----BEGIN/m, '-----BEGIN');
      await gpg(['--import'], Buffer.from(text));
    });
    const after = await exported('rev@ops.example');
    expect(nativeKeys(after)).toBeUndefined();
    const ring = await Keyring.of([{ bytes: after, source: 'rev.pub' }]);
    expect(ring.native).toHaveLength(0);
    await expect(verifyDetached(data, sig, ring, 'x')).rejects.toMatchObject({ code: 'SIGNATURE_KEY_REVOKED' });
    // The same key twice: openpgp.js takes the first file that holds it, and so does the
    // native path, which decides only when that file is one it read.
    const revokedFirst = await Keyring.of([
      { bytes: after, source: 'rev.pub' },
      { bytes: before, source: 'old.pub' },
    ]);
    expect(revokedFirst.native).toHaveLength(1);
    await expect(verifyDetached(data, sig, revokedFirst, 'x')).rejects.toMatchObject({ code: 'SIGNATURE_KEY_REVOKED' });
    const plainFirst = await Keyring.of([
      { bytes: before, source: 'old.pub' },
      { bytes: after, source: 'rev.pub' },
    ]);
    expect((await verifyDetached(data, sig, plainFirst, 'x')).fingerprint).toBe(revFpr);
    expect((await verifyDetached(data, sig, await Keyring.of([{ bytes: before, source: 'old.pub' }, { bytes: after, source: 'rev.pub' }], { native: false }), 'x')).fingerprint).toBe(revFpr);
    // An expiring key still verifies, through openpgp.js.
    const exp = await exported('exp@ops.example');
    expect((await verifyDetached(data, await detach('exp@ops.example', data), await Keyring.of([{ bytes: exp, source: 'k' }]), 'x')).fingerprint).toBe(await fpr('exp@ops.example'));
  });

  it('declines a key that signs with a subkey, a text signature and SHA-1; openpgp.js answers them', async () => {
    const key = await exported('sub@ops.example');
    // Its primary key only certifies (key flags): declined, read by openpgp.js.
    expect(nativeKeys(key)).toBeUndefined();
    const ring = await Keyring.of([{ bytes: key, source: 'k' }]);
    expect(ring.native).toHaveLength(0);
    const bySub = await detach('sub@ops.example', data);
    expect((await verifyDetached(data, bySub, ring, 'x')).fingerprint).toBe(await fpr('sub@ops.example'));
    const edKeys = nativeKeys(await exported('ed@ops.example'))!;
    expect(verifyNative(data, await detach('ed@ops.example', data, ['--textmode']), edKeys, new Date())).toBeUndefined();
    expect(verifyNative(data, await detach('ed@ops.example', data, ['--digest-algo', 'SHA1']), edKeys, new Date())).toBeUndefined();
  });

  it('never throws on mutated keys and signatures, and never accepts what openpgp.js refuses', async () => {
    const key = dearmor(await exported('ed@ops.example', false), 'PUBLIC KEY BLOCK')!;
    const sig = await detach('ed@ops.example', data);
    const keys = nativeKeys(key)!;
    const next = seededRandom(21);
    const rnd = { int: (n: number): number => Math.floor(next() * n) };
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const s = Buffer.from(sig);
      const k = Buffer.from(key);
      const target = i % 2 ? s : k;
      const n = 1 + rnd.int(3);
      for (let j = 0; j < n; j++) target[rnd.int(target.length)] = rnd.int(256);
      if (i % 7 === 0) target.writeUInt8(rnd.int(256), rnd.int(target.length));
      // A mutated key read natively is checked with; one declined leaves the original.
      const mk = nativeKeys(k);
      const got = verifyNative(data, s, mk ?? keys, new Date());
      if (got) {
        accepted++;
        // Whatever it accepts, openpgp.js accepts with the same signer.
        expect((await viaOpenpgp(data, s, mk ? k : key)).fingerprint).toBe(got.key.fingerprint);
      }
    }
    // Some mutations fall in bytes no check covers (unhashed subpackets): the loop compared those.
    expect(accepted).toBeGreaterThan(0);
    for (const cut of [0, 1, 5, 20, sig.length - 1]) expect(verifyNative(data, sig.subarray(0, cut), keys, new Date())).toBeUndefined();
    for (const cut of [0, 1, 5, 40, key.length - 1]) expect(() => nativeKeys(key.subarray(0, cut))).not.toThrow();
  });

  it('refuses armor with a wrong checksum or two blocks', async () => {
    const text = String(await exported('ed@ops.example'));
    const crc = /^=[A-Za-z0-9+/]{4}$/m.exec(text)![0];
    const other = crc === '=AAAA' ? '=AAAB' : '=AAAA';
    expect(nativeKeys(Buffer.from(text.replace(crc, other)))).toBeUndefined();
    expect(nativeKeys(Buffer.from(text + text))).toBeUndefined();
    expect(nativeKeys(Buffer.from(text))).toHaveLength(1);
  });
});
