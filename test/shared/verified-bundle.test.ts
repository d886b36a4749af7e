/**
 * Only the bundle verifier (shared/bundle-reader.ts) can make a VerifiedBundle: the type system
 * refuses every other way (checked by `npm run typecheck`, which covers tests), and the
 * constructor refuses a forged proof at run time for untyped callers.
 */
import { describe, expect, it } from 'vitest';
import { VerifiedBundle } from '../../shared/bundle-reader.js';
import type { Manifest } from '../../shared/manifest.js';
import type { SignerInfo } from '../../shared/signing.js';

const manifest = {} as Manifest;
const signer = {} as SignerInfo;
const bytes = Buffer.alloc(0);

function takesVerified(b: VerifiedBundle): Manifest {
  return b.manifest;
}

describe('VerifiedBundle', () => {
  it('cannot be made outside the verifier', () => {
    // @ts-expect-error the constructor demands the verifier's module-private proof
    expect(() => new VerifiedBundle(Symbol('bundle verifier'), manifest, bytes, bytes, signer, 0)).toThrow(/only the bundle verifier/);
    // @ts-expect-error there is no factory to call
    expect(VerifiedBundle.create).toBeUndefined();
    // @ts-expect-error an object of the same shape is not one: it lacks the module-private brand
    expect(() => takesVerified({ manifest, manifestBytes: bytes, signature: bytes, signer, payloadsOffset: 0 })).not.toThrow();
  });
});
