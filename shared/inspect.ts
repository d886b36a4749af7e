/**
 * Reads a bundle's manifest, signature issuer and entry list without trusting any of it:
 * for `ota-release inspect`, which shows what a bundle claims before anyone verifies it.
 */
import * as openpgp from 'openpgp';
import { ByteSource } from './byte-source.js';
import { OtaError, errorMessage } from './errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type Manifest } from './manifest.js';
import { TarReader, collect, padded } from './tar-reader.js';
import { isoTime } from './iso-time.js';

/** What a bundle claims, unverified. */
export interface BundleClaims {
  manifest: Manifest;
  signatureKeyId: string | null;
  signatureCreated: string | null;
  entries: { name: string; size: number; offset: number }[];
}

/** Lists a bundle's entries and parses its manifest; verifies nothing. */
export async function inspectBundle(input: AsyncIterable<Uint8Array>, source: string): Promise<BundleClaims> {
  const what = `bundle ${source}`;
  const src = new ByteSource(input);
  const tar = new TarReader(src, what);
  const entries: BundleClaims['entries'] = [];
  let manifestBytes: Buffer | undefined;
  let signature: Buffer | undefined;
  for (;;) {
    const h = await tar.next();
    if (!h) break;
    entries.push({ name: h.name, size: h.size, offset: h.dataOffset });
    const small = h.size <= MAX_MANIFEST_BYTES;
    if (entries.length === 1 && h.name === 'manifest.json' && small) {
      manifestBytes = Buffer.concat(await collect(src.take(h.size, what)));
      await src.skip(padded(h.size) - h.size, what);
    } else if (entries.length === 2 && h.name === 'manifest.json.sig' && small) {
      signature = Buffer.concat(await collect(src.take(h.size, what)));
      await src.skip(padded(h.size) - h.size, what);
    } else {
      await src.skip(padded(h.size), what);
    }
  }
  if (!manifestBytes) throw new OtaError('MANIFEST_MISSING', `${what}: the first entry is not manifest.json`);
  const manifest = parseManifest(manifestBytes);
  let signatureKeyId: string | null = null;
  let signatureCreated: string | null = null;
  if (signature) {
    try {
      const text = signature.subarray(0, 64).toString('latin1');
      const sig = text.includes('-----BEGIN PGP')
        ? await openpgp.readSignature({ armoredSignature: signature.toString('utf8') })
        : await openpgp.readSignature({ binarySignature: signature });
      signatureKeyId = sig.getSigningKeyIDs()[0]?.toHex().toUpperCase() ?? null;
      const pkt = sig.packets[0] as openpgp.SignaturePacket | undefined;
      signatureCreated = pkt?.created ? isoTime(pkt.created) : null;
    } catch (cause) {
      throw new OtaError('SIGNATURE_MALFORMED', `${what}: manifest.json.sig is not an OpenPGP signature (${errorMessage(cause)})`, { cause });
    }
  }
  return { manifest, signatureKeyId, signatureCreated, entries };
}
