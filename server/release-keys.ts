/**
 * The server holds release public keys only (DESIGN §4: a compromised server cannot sign).
 * A private key given as --release-key is refused at start, not quietly reduced to its public half.
 */
import * as openpgp from 'openpgp';
import { OtaError } from '../shared/errors.js';
import { readKeyFile } from '../shared/signing.js';

/** Throws SERVER_RELEASE_KEY_PRIVATE when one of `paths` holds a private key. */
export async function refusePrivateReleaseKeys(paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    const bytes = await readKeyFile(p);
    const text = bytes.toString('utf8');
    let isPrivate = text.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----');
    if (!isPrivate && !text.includes('-----BEGIN PGP')) {
      try {
        isPrivate = (await openpgp.readKeys({ binaryKeys: bytes })).some((k) => k.isPrivate());
      } catch {
        // Not a binary key: the keyring loader names the problem.
      }
    }
    if (isPrivate) {
      throw new OtaError('SERVER_RELEASE_KEY_PRIVATE', `release key ${p} is a private key: give the server the public half only (ota-release keygen writes it as NAME.pub)`);
    }
  }
}
