/** Hand-made bundles the writer refuses to make: missing signature, bad manifests, truncations. */
import { createHash } from 'node:crypto';
import { serializeManifest } from '../../shared/manifest.js';
import { readPrivateKey, signDetached, type GeneratedKey } from '../../shared/signing.js';
import { END_OF_ARCHIVE, entryHeader, pad } from '../../shared/tar-writer.js';

/** What to put into a hand-made bundle. */
export interface CraftInput {
  /** The manifest object; serialised as the writer would, so only its content differs. */
  manifest: Record<string, unknown>;
  payloads: { name: string; bytes: Buffer }[];
  key: GeneratedKey;
  /** Leave out manifest.json.sig. */
  omitSignature?: boolean;
}

/** A manifest for one image payload, valid unless the caller overrides fields. */
export function imageManifest(version: string, payload: Buffer, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 1,
    product: 'gateway',
    version,
    compatible: ['x86-gw'],
    created: '2026-11-21T10:00:00Z',
    modules: [{ name: 'rootfs', type: 'image', sha256: createHash('sha256').update(payload).digest('hex'), size: payload.length, compression: 'none' }],
    ...over,
  };
}

/** Builds the bundle bytes. */
export async function craftBundle(c: CraftInput): Promise<Buffer> {
  const manifest = serializeManifest(c.manifest as never);
  const key = await readPrivateKey(Buffer.from(c.key.privateKey), 'craft key');
  const sig = await signDetached(manifest, key);
  const parts = [entryHeader('manifest.json', manifest.length, 0), pad(manifest)];
  if (!c.omitSignature) parts.push(entryHeader('manifest.json.sig', sig.length, 0), pad(sig));
  for (const p of c.payloads) parts.push(entryHeader(`payloads/${p.name}`, p.bytes.length, 0), pad(p.bytes));
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
