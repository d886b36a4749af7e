import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { nativeSigner } from '../../shared/fast-sign.js';
import { generateSigningKey, keyringFromArmored, readPrivateKey, signDetached, verifyDetached } from '../../shared/signing.js';

describe('signing', () => {
  it('signs Ed25519 natively with packets openpgp.js verifies, and detects a changed byte', async () => {
    const g = await generateSigningKey('Server <server@otaab.example>');
    const key = await readPrivateKey(Buffer.from(g.privateKey), 'k');
    expect(nativeSigner(key)).not.toBeNull();
    const keyring = await keyringFromArmored([g.publicKey]);
    const data = Buffer.from('{"device":"gw-1","nonce":"abc"}');
    const sig = await signDetached(data, key);
    const signer = await verifyDetached(data, sig, keyring, 'answer');
    expect(signer.fingerprint).toBe(g.fingerprint);
    expect(signer.algorithm).toBe('Ed25519');
    // Parsed by openpgp.js as an ordinary v4 signature with the issuer named.
    const parsed = await openpgp.readSignature({ binarySignature: sig });
    expect(parsed.getSigningKeyIDs()[0]?.toHex().toUpperCase()).toBe(g.fingerprint.slice(-16));
    const changed = Buffer.from(data);
    changed[5] = 0x21;
    await expect(verifyDetached(changed, sig, keyring, 'answer')).rejects.toMatchObject({ code: 'SIGNATURE_BAD' });
  });

  it('verifies on a device whose clock is behind the signer (no RTC, no NTP yet), still detecting a changed byte', async () => {
    const g = await generateSigningKey('Server <server@otaab.example>');
    const key = await readPrivateKey(Buffer.from(g.privateKey), 'k');
    const keyring = await keyringFromArmored([g.publicKey]);
    const data = Buffer.from('{"device":"gw-1","nonce":"abc"}');
    const sig = await signDetached(data, key);
    // A clock a day behind, and one stuck at the image's build date years ago.
    for (const behind of [24 * 3600e3, 3 * 365 * 24 * 3600e3]) {
      const deviceNow = new Date(Date.now() - behind);
      expect((await verifyDetached(data, sig, keyring, 'answer', deviceNow)).fingerprint).toBe(g.fingerprint);
      const changed = Buffer.from(data);
      changed[5] = 0x21;
      await expect(verifyDetached(changed, sig, keyring, 'answer', deviceNow)).rejects.toMatchObject({ code: 'SIGNATURE_BAD' });
    }
  });

  it('falls back to openpgp.js for an RSA key and still verifies', async () => {
    const { privateKey, publicKey } = await openpgp.generateKey({ type: 'rsa', rsaBits: 3072, userIDs: [{ name: 'rsa' }], format: 'object' });
    expect(nativeSigner(privateKey)).toBeNull();
    const keyring = await keyringFromArmored([publicKey.armor()]);
    const data = Buffer.from('payload');
    const signer = await verifyDetached(data, await signDetached(data, privateKey), keyring, 'x');
    expect(signer.algorithm).toBe('RSA-3072');
  });

  it('protects a key with a passphrase and names the variable when it is missing', async () => {
    const g = await generateSigningKey('ops', 'correct horse');
    await expect(readPrivateKey(Buffer.from(g.privateKey), 'ops.key')).rejects.toMatchObject({ code: 'KEY_LOCKED', message: expect.stringContaining('OTA_KEY_PASSPHRASE') });
    await expect(readPrivateKey(Buffer.from(g.privateKey), 'ops.key', 'wrong')).rejects.toMatchObject({ code: 'KEY_LOCKED' });
    const key = await readPrivateKey(Buffer.from(g.privateKey), 'ops.key', 'correct horse');
    expect(key.isDecrypted()).toBe(true);
  });

  it('accepts a user id whose address openpgp.js would refuse', async () => {
    const g = await generateSigningKey('Srv <srv@x>');
    expect(g.fingerprint).toMatch(/^[0-9A-F]{40}$/);
  });
});
