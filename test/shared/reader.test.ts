import { Readable } from 'node:stream';
import { describe, expect, it, beforeAll } from 'vitest';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleReader } from '../../shared/bundle-reader.js';
import { buildBundle } from '../../shared/bundle-writer.js';
import { isOtaError } from '../../shared/errors.js';
import { generateSigningKey, keyringFromArmored, readPrivateKey, type Keyring } from '../../shared/signing.js';
import { tempDir } from '../helpers/cli.js';

let bundle: Buffer;
let keyring: Keyring;
let otherKeyring: Keyring;

function chunked(buf: Buffer, size: number): AsyncIterable<Buffer> {
  return (async function* () {
    for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
  })();
}

beforeAll(async () => {
  const { dir, cleanup } = await tempDir();
  const k = await generateSigningKey('t');
  const other = await generateSigningKey('other');
  keyring = await keyringFromArmored([k.publicKey]);
  otherKeyring = await keyringFromArmored([other.publicKey]);
  const img = Buffer.alloc(100_003);
  for (let i = 0; i < img.length; i++) img[i] = i % 253;
  await writeFile(join(dir, 'img'), img);
  await buildBundle({
    product: 'p', version: '1.0.0', compatible: ['c'], key: await readPrivateKey(Buffer.from(k.privateKey), 'k'), out: join(dir, 'b'),
    payloads: [{ name: 'a', type: 'image', path: join(dir, 'img') }, { name: 'b', type: 'image', path: join(dir, 'img'), gzip: true }],
  });
  bundle = await readFile(join(dir, 'b'));
  await cleanup();
});

describe('BundleReader', () => {
  it.each([1, 7, 511, 512, 513, 65536])('reads a bundle delivered in %i-byte chunks', async (size) => {
    const reader = await BundleReader.open(chunked(bundle, size), { keyring });
    const seen: [string, number][] = [];
    for await (const p of reader.payloads()) {
      let n = 0;
      for await (const c of p.chunks) n += c.length;
      seen.push([p.module.name, n]);
    }
    expect(seen).toEqual([['a', 100_003], ['b', reader.manifest.modules[1]!.size]]);
    expect(reader.complete).toBe(true);
  });

  it('verifies the signature before handing out a reader, so no payload byte is read first', async () => {
    let pulled = 0;
    const counting = (async function* () {
      for await (const c of chunked(bundle, 512)) {
        pulled += c.length;
        yield c;
      }
    })();
    await expect(BundleReader.open(counting, { keyring: otherKeyring })).rejects.toMatchObject({ code: 'SIGNATURE_UNKNOWN_KEY' });
    // Only the two small entries at the head were read: no payload block.
    const firstPayloadHeader = bundle.indexOf('payloads/a');
    expect(pulled).toBeLessThanOrEqual(firstPayloadHeader);
  });

  it('drains and still verifies payloads the caller skips', async () => {
    const tampered = Buffer.from(bundle);
    const at = bundle.indexOf('payloads/a') + 512 + 10;
    tampered[at] = (tampered[at] ?? 0) ^ 1;
    const reader = await BundleReader.open(chunked(tampered, 4096), { keyring });
    const err = await (async () => {
      for await (const _ of reader.payloads()) {
        // skip every payload
      }
    })().catch((e: unknown) => e);
    expect(isOtaError(err, 'PAYLOAD_HASH_MISMATCH')).toBe(true);
  });

  it('accepts a plain Node stream as input', async () => {
    const reader = await BundleReader.open(Readable.from(chunked(bundle, 10_000)), { keyring });
    expect(reader.manifest.version).toBe('1.0.0');
  });
});

describe('BundleReader.resume', () => {
  async function firstPass() {
    const reader = await BundleReader.open(chunked(bundle, 4096), { keyring });
    const out: { dataOffset: number; bytes: Buffer; size: number }[] = [];
    for await (const p of reader.payloads()) {
      const parts: Buffer[] = [];
      for await (const c of p.chunks) parts.push(Buffer.from(c));
      out.push({ dataOffset: p.dataOffset, bytes: Buffer.concat(parts), size: p.module.size });
    }
    return { reader, out };
  }

  it.each([
    [0, 0],
    [0, 1],
    [0, 50_000],
    [0, 100_003],
    [1, 0],
    [1, 17],
  ])('continues inside payload %i at offset %i and verifies the whole payload', async (index, offset) => {
    const { reader, out } = await firstPass();
    const target = out[index]!;
    const signed = { manifestBytes: reader.bundle.manifestBytes, signature: reader.bundle.signature, payloadsOffset: reader.bundle.payloadsOffset };
    const tail = bundle.subarray(target.dataOffset + offset);
    const prefix = (async function* () {
      yield target.bytes.subarray(0, offset);
    })();
    const resumed = await BundleReader.resume(chunked(tail, 3000), { keyring }, signed, { index, dataOffset: target.dataOffset, offset }, prefix);
    const got: [number, number, number][] = [];
    for await (const p of resumed.payloads()) {
      let n = 0;
      for await (const c of p.chunks) n += c.length;
      got.push([p.index, p.startOffset, n]);
    }
    expect(got[0]).toEqual([index, offset, target.size - offset]);
    expect(got).toHaveLength(out.length - index);
    expect(resumed.complete).toBe(true);
  });

  it('fails the payload when the bytes read back from the slot differ from what was written', async () => {
    const { reader, out } = await firstPass();
    const signed = { manifestBytes: reader.bundle.manifestBytes, signature: reader.bundle.signature, payloadsOffset: reader.bundle.payloadsOffset };
    const wrong = Buffer.from(out[0]!.bytes.subarray(0, 1000));
    wrong[3] = (wrong[3] ?? 0) ^ 1;
    const resumed = await BundleReader.resume(chunked(bundle.subarray(out[0]!.dataOffset + 1000), 4096), { keyring }, signed, { index: 0, dataOffset: out[0]!.dataOffset, offset: 1000 }, (async function* () {
      yield wrong;
    })());
    const err = await (async () => {
      for await (const p of resumed.payloads()) for await (const _ of p.chunks) void _;
    })().catch((e: unknown) => e);
    expect(isOtaError(err, 'PAYLOAD_HASH_MISMATCH')).toBe(true);
  });
});
