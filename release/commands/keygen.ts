/** `ota-release keygen`: a new Ed25519 release key pair, NAME.key and NAME.pub. */
import { open } from 'node:fs/promises';
import { defineCommand, required } from '../../shared/cli.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { generateSigningKey } from '../../shared/signing.js';

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  // 'wx': never overwrite an existing key, whatever the caller meant.
  let fh;
  try {
    fh = await open(path, 'wx', mode);
  } catch (err) {
    // An existing key is an operational refusal (exit 1), not a usage mistake.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new OtaError('KEY_EXISTS', `${path} already exists; choose another --out or remove it`, { cause: err });
    throw new OtaError('OUTPUT_UNWRITABLE', `output ${path}: cannot be written (${errorMessage(err)})`, { cause: err });
  }
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The keygen command. */
export const keygenCommand = defineCommand({
  name: 'keygen',
  summary: 'Generate a release signing key pair (Ed25519, OpenPGP v4)',
  usage: 'ota-release keygen --out NAME [--uid "Name <mail>"]',
  help: `Writes NAME.key (private, mode 0600) and NAME.pub (public, armored). If the environment
variable OTA_KEY_PASSPHRASE is set, the private key is protected with it.
Keep NAME.key offline; give NAME.pub to devices (agent config "trustedKeys") and the server
(--release-key). The key is readable by GnuPG: gpg --import NAME.pub.

Options:
  --out NAME     path prefix of the two files (required)
  --uid TEXT     user id written into the key (default "otaab release key")

Example:
  OTA_KEY_PASSPHRASE=... ota-release keygen --out keys/release-2026`,
  options: { out: { type: 'string', short: 'o' }, uid: { type: 'string' } },
  async run({ values }) {
    const out = required(values, 'out');
    const uid = typeof values.uid === 'string' ? values.uid : 'otaab release key';
    const passphrase = process.env.OTA_KEY_PASSPHRASE || undefined;
    const key = await generateSigningKey(uid, passphrase);
    await writeNew(`${out}.key`, key.privateKey, 0o600);
    await writeNew(`${out}.pub`, key.publicKey, 0o644);
    process.stdout.write(`${out}.key  private key${passphrase ? ' (protected by OTA_KEY_PASSPHRASE)' : ' (not protected: set OTA_KEY_PASSPHRASE to protect it)'}\n${out}.pub  public key\nfingerprint ${key.fingerprint}\n`);
  },
});
