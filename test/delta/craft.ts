/** Hand-made format 2 bundles for hostile-input tests: any index bytes, properly signed. */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { PrivateKey } from 'openpgp';
import { serializeManifest, type Manifest } from '../../shared/manifest.js';
import { signDetached } from '../../shared/signing.js';
import { END_OF_ARCHIVE, entryHeader, pad } from '../../shared/tar-writer.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Writes a signed bundle whose single image `rootfs` has the given stored payload and index entry. */
export async function craftIndexed(out: string, key: PrivateKey, version: string, payload: Buffer, index: Buffer, opts: { gzip?: { unpackedSize: number }; indexSha256?: string } = {}): Promise<void> {
  const manifest: Manifest = {
    format: 2,
    product: 'gateway',
    version,
    compatible: ['x86-gw'],
    created: '2026-12-01T00:00:00Z',
    modules: [
      {
        name: 'rootfs',
        type: 'image',
        sha256: sha(payload),
        size: payload.length,
        compression: opts.gzip ? 'gzip' : 'none',
        ...(opts.gzip ? { unpackedSize: opts.gzip.unpackedSize } : {}),
        index: { sha256: opts.indexSha256 ?? sha(index), size: index.length },
      },
    ],
  };
  const mb = serializeManifest(manifest);
  const sig = await signDetached(mb, key);
  const t = 1764547200;
  await writeFile(
    out,
    Buffer.concat([
      entryHeader('manifest.json', mb.length, t), pad(mb),
      entryHeader('manifest.json.sig', sig.length, t), pad(sig),
      entryHeader('index/rootfs', index.length, t), pad(index),
      entryHeader('payloads/rootfs', payload.length, t), pad(payload),
      END_OF_ARCHIVE,
    ]),
  );
}
