/**
 * The check-in answer signer as a service. The key is parsed once at start; the check-in route
 * only calls `sign`, so a faster or hardware-backed signer can replace this one unchanged.
 */
import { signAnswer, type CheckinAnswer, type SignedEnvelope } from '../shared/protocol.js';
import type { ServerKey } from './server-key.js';

/** Signs check-in answers with the server key. */
export interface AnswerSigner {
  readonly fingerprint: string;
  /** Armored public key, as enrollment hands it to devices. */
  readonly publicKey: string;
  sign(answer: CheckinAnswer): Promise<SignedEnvelope>;
}

/** A signer over the server's OpenPGP key (shared/protocol's envelope). */
export function keySigner(key: ServerKey): AnswerSigner {
  return {
    fingerprint: key.fingerprint,
    publicKey: key.publicKey,
    sign: (answer) => signAnswer(answer, key.privateKey),
  };
}
