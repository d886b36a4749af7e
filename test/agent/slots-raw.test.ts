// Raw slots: a real bundle's image streamed into an image file, inflated when gzip, read
// back, resumed from a durable point, and a tampered payload caught.
import { readFile, rm, mkdtemp, open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, openSync, writeSync as fsWriteSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleReader } from '../../shared/bundle-reader.js';
import { sha256Hex } from '../../shared/hashing.js';
import { loadKeyring, type Keyring } from '../../shared/signing.js';
import { RawSlot } from '../../agent/boot/slots/raw.js';
import { WRITE_BATCH } from '../../shared/write-behind.js';
import type { DurablePoint } from '../../agent/boot/slots/types.js';
import type { SlotConfig } from '../../agent/config/types.js';
import { imageBundle, pseudoRandom } from './helpers/bundles.js';
import { makeKey, type TestKey } from './helpers/keys.js';

let dir: string;
let key: TestKey;
let keyring: Keyring;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-raw-'));
  key = await makeKey(dir);
  keyring = await loadKeyring([key.pubPath]);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function slotFile(name: string, size: number): Promise<SlotConfig> {
  const path = join(dir, name);
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
  return { name: 'B', kind: 'raw', path };
}

/** Zeroes 512 bytes of `path` at `at`, behind the writer's back (storage that lost them). */
function writeSync(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    fsWriteSync(fd, Buffer.alloc(512), 0, 512, at);
  } finally {
    closeSync(fd);
  }
}

const active: SlotConfig = { name: 'A', kind: 'raw', path: '/nonexistent' };

describe('raw slot', () => {
  it('writes an image byte for byte, fsyncs, and reads back the same digest', async () => {
    const image = pseudoRandom(300_000, 1);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.0' });
    const slot = await slotFile('plain.img', 1 << 20);
    const reader = await BundleReader.open(createReadStream(path), { keyring });
    const backend = new RawSlot(slot);
    const points: DurablePoint[] = [];
    const r = await backend.write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 64 * 1024, onDurable: (p) => points.push(p) });
    expect(reader.complete).toBe(true);
    expect(r.digest).toEqual({ kind: 'raw', length: image.length, sha256: sha256Hex(image) });
    expect(await backend.readBack(r.digest)).toEqual(r.digest);
    expect((await readFile(slot.path)).subarray(0, image.length).equals(image)).toBe(true);
    // A checkpoint every 64 KiB, each naming where the bundle can be read on from.
    expect(points.length).toBeGreaterThanOrEqual(4);
    // Each checkpoint's fsync overlaps the next writes, but the points still come in order,
    // each at least 64 KiB past the one before.
    for (let i = 1; i < points.length - 1; i++) expect(points[i]!.slotBytes - points[i - 1]!.slotBytes).toBeGreaterThanOrEqual(64 * 1024);
    expect(points.at(-1)).toMatchObject({ slotBytes: image.length, resume: { index: 0, offset: image.length } });
    expect(await backend.capacity()).toBe(1 << 20);
  });

  it('gathers chunks into batched writes, one in flight, and lands every byte in order', async () => {
    // Larger than a few write batches, in the 64 KiB chunks of a file stream, with checkpoints
    // that fall inside batches.
    const image = pseudoRandom(5 * WRITE_BATCH + 12_345, 11);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.9' });
    const slot = await slotFile('batched.img', 8 * WRITE_BATCH);
    const reader = await BundleReader.open(createReadStream(path), { keyring });
    const points: DurablePoint[] = [];
    const r = await new RawSlot(slot).write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 1_500_000, onDurable: (p) => points.push(p) });
    expect(r.digest).toEqual({ kind: 'raw', length: image.length, sha256: sha256Hex(image) });
    expect((await readFile(slot.path)).subarray(0, image.length).equals(image)).toBe(true);
    expect(points.map((p) => p.slotBytes)).toEqual([...points.map((p) => p.slotBytes)].sort((a, b) => a - b));
    expect(points.at(-1)!.slotBytes).toBe(image.length);
  });

  it('fails with SLOT_WRITE_FAILED naming the offset when the storage refuses a write', async () => {
    // /dev/full answers every write with ENOSPC, as a slot smaller than its image would.
    const image = pseudoRandom(3 * WRITE_BATCH, 12);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.10' });
    const reader = await BundleReader.open(createReadStream(path), { keyring });
    const full: SlotConfig = { name: 'B', kind: 'raw', path: '/dev/full' };
    await expect(new RawSlot(full).write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 1 << 30 })).rejects.toMatchObject({
      code: 'SLOT_WRITE_FAILED',
      message: expect.stringMatching(/^slot B \(\/dev\/full\): writing at offset 0 failed \(.*ENOSPC/),
    });
  });

  it('inflates a gzip image and compares against the inflated bytes', async () => {
    const image = Buffer.concat([pseudoRandom(100_000, 2), Buffer.alloc(200_000, 7)]);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.1', gzip: true });
    const slot = await slotFile('gz.img', 1 << 20);
    const reader = await BundleReader.open(createReadStream(path), { keyring });
    const backend = new RawSlot(slot);
    const points: DurablePoint[] = [];
    const r = await backend.write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 64 * 1024, onDurable: (p) => points.push(p) });
    expect(r.digest).toEqual({ kind: 'raw', length: image.length, sha256: sha256Hex(image) });
    expect(await backend.readBack(r.digest)).toEqual(r.digest);
    // A gzip stream cannot be resumed mid-way: no resume point is offered.
    expect(points.every((p) => p.resume === undefined)).toBe(true);
  });

  it('notices bytes the storage dropped although their fsync returned', async () => {
    // Each checkpoint's region is read back once its fsync returns, during the write: bytes
    // lost by then (here overwritten as the checkpoint is recorded) are in that read-back.
    const image = pseudoRandom(200_000, 3);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.2' });
    const slot = await slotFile('lossy.img', 1 << 20);
    const reader = await BundleReader.open(createReadStream(path), { keyring });
    const backend = new RawSlot(slot);
    let lost = false;
    // The read-back is the payload's hash check (the stream is not hashed twice): the write
    // itself fails, and a later read-back of the slot sees the loss too.
    const write = backend.write(reader.payloads(), {
      modules: reader.manifest.modules,
      active,
      checkpointBytes: 64 * 1024,
      onDurable: () => {
        if (lost) return;
        lost = true;
        writeSync(slot.path, 4096);
      },
    });
    await expect(write).rejects.toMatchObject({ code: 'PAYLOAD_HASH_MISMATCH', message: expect.stringMatching(/storage that did not keep/) });
    expect(lost).toBe(true);
    const digest = { kind: 'raw' as const, length: image.length, sha256: sha256Hex(image) };
    expect((await backend.readBack(digest)).sha256).not.toBe(digest.sha256);
  });

  it('reads the whole slot again when no read-back of this write is at hand', async () => {
    // What an agent restarted after the write does: the bytes lost since are noticed.
    const image = pseudoRandom(50_000, 13);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.12' });
    const slot = await slotFile('lossy-later.img', 1 << 20);
    const reader = await BundleReader.open(createReadStream(path), { keyring });
    const r = await new RawSlot(slot).write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 1 << 20 });
    // The read-back done during the write answers once.
    expect(await new RawSlot(slot).readBack(r.digest)).toEqual(r.digest);
    writeSync(slot.path, 4096);
    expect((await new RawSlot(slot).readBack(r.digest)).sha256).not.toBe(r.digest.sha256);
  });

  // A block device is read back with O_DIRECT from aligned buffers (a loop device needs root).
  it.runIf(process.getuid?.() === 0 && spawnSync('losetup', ['--version']).status === 0)('reads a block device back with O_DIRECT, an image of a length no block divides', async () => {
    const image = pseudoRandom(3 * WRITE_BATCH + 777, 14);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.13' });
    const file = await slotFile('loop.img', 8 * WRITE_BATCH);
    const dev = spawnSync('losetup', ['-f', '--show', file.path], { encoding: 'utf8' }).stdout.trim();
    expect(dev).toMatch(/^\/dev\/loop\d+$/);
    try {
      const slot: SlotConfig = { name: 'B', kind: 'raw', path: dev };
      const reader = await BundleReader.open(createReadStream(path), { keyring });
      const r = await new RawSlot(slot).write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 1_000_000 });
      expect(r.digest).toEqual({ kind: 'raw', length: image.length, sha256: sha256Hex(image) });
      expect(await new RawSlot(slot).readBack(r.digest)).toEqual(r.digest);
      // Read again from the device, not from the write's read-back.
      expect(await new RawSlot(slot).readBack(r.digest)).toEqual(r.digest);
    } finally {
      spawnSync('losetup', ['-d', dev]);
    }
  });

  it('fails the write when a payload byte was tampered with', async () => {
    const image = pseudoRandom(80_000, 4);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.3' });
    const bytes = await readFile(path);
    const at = bytes.length - 1024 - 3000;
    bytes[at] = bytes[at]! ^ 0xff;
    const tampered = join(dir, 'tampered.otab');
    await writeFile(tampered, bytes);
    const slot = await slotFile('tampered.img', 1 << 20);
    const reader = await BundleReader.open(createReadStream(tampered), { keyring });
    await expect(new RawSlot(slot).write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 1 << 20 })).rejects.toMatchObject({ code: 'PAYLOAD_HASH_MISMATCH' });
  });

  it('resumes a write from a durable point, the prefix read back from the slot', async () => {
    const image = pseudoRandom(200_000, 5);
    const { path } = await imageBundle(dir, key, image, { version: '1.0.4' });
    const slot = await slotFile('resume.img', 1 << 20);
    // First pass: stop right after the second checkpoint, as a kill would.
    const first = await BundleReader.open(createReadStream(path), { keyring });
    const points: DurablePoint[] = [];
    const stop = new Error('killed');
    await expect(
      new RawSlot(slot).write(first.payloads(), {
        modules: first.manifest.modules,
        active,
        checkpointBytes: 64 * 1024,
        onDurable: (p) => {
          points.push(p);
          if (points.length === 2) throw stop;
        },
      }),
    ).rejects.toBe(stop);
    const at = points[1]!.resume!;
    const bundle = await readFile(path);
    const resumed = await BundleReader.resume(
      (async function* () {
        yield bundle.subarray(at.dataOffset + at.offset);
      })(),
      { keyring },
      { manifestBytes: first.bundle.manifestBytes, signature: first.bundle.signature, payloadsOffset: first.bundle.payloadsOffset },
      at,
      (async function* () {
        yield (await readFile(slot.path)).subarray(0, at.offset);
      })(),
    );
    const r = await new RawSlot(slot).write(resumed.payloads(), { modules: first.manifest.modules, active, checkpointBytes: 1 << 20 });
    expect(r.digest).toEqual({ kind: 'raw', length: image.length, sha256: sha256Hex(image) });
    expect(r.stats.bytesWritten).toBe(image.length - at.offset);
    expect(await new RawSlot(slot).readBack(r.digest)).toEqual(r.digest);
  });

  it('refuses trees and a missing slot device', async () => {
    await expect(new RawSlot({ name: 'B', kind: 'raw', path: join(dir, 'absent.img') }).write((async function* () {})(), { modules: [], active, checkpointBytes: 1 << 20 })).rejects.toMatchObject({
      code: 'SLOT_WRITE_FAILED',
    });
  });
});
