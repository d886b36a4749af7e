/** A release key pair for tests: the private key signs bundles, the public file is trusted. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { generateSigningKey, readPrivateKey } from '../../../shared/signing.js';

/** A key and the path of its public half. */
export interface TestKey {
  key: PrivateKey;
  pubPath: string;
}

/** Makes a fresh Ed25519 release key and writes its public key into `dir`. */
export async function makeKey(dir: string, name = 'release'): Promise<TestKey> {
  const k = await generateSigningKey(`${name} <${name}@example.com>`);
  const pubPath = join(dir, `${name}.pub`);
  await writeFile(pubPath, k.publicKey);
  return { key: await readPrivateKey(Buffer.from(k.privateKey), name), pubPath };
}
