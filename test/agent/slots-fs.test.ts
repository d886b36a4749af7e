// fs slots: an archive replaces the whole tree; a module starts from the active slot (copying
// only what differs) and replaces its target; links, modes and ownership land as packed;
// nothing is written through a symlink; the digest read back matches what was written.
import { createReadStream } from 'node:fs';
import { chmod, chown, link, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleReader } from '../../shared/bundle-reader.js';
import { loadKeyring, type Keyring } from '../../shared/signing.js';
import { FsSlot } from '../../agent/boot/slots/fs.js';
import type { SlotConfig } from '../../agent/config/types.js';
import { treeBundle, writeTree } from './helpers/bundles.js';
import { makeKey, type TestKey } from './helpers/keys.js';
import { comparable, snapshot } from './helpers/tree.js';

const asRoot = process.getuid?.() === 0;
let dir: string;
let key: TestKey;
let keyring: Keyring;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-fs-'));
  key = await makeKey(dir);
  keyring = await loadKeyring([key.pubPath]);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function slots(name: string): Promise<{ a: SlotConfig; b: SlotConfig }> {
  const a = join(dir, name, 'A');
  const b = join(dir, name, 'B');
  await mkdir(a, { recursive: true });
  await mkdir(b, { recursive: true });
  return { a: { name: 'A', kind: 'fs', path: a }, b: { name: 'B', kind: 'fs', path: b } };
}

/** A small root file system with the awkward parts: links, odd modes, owners, a FIFO. */
async function rootfs(root: string, version: string): Promise<string> {
  await writeTree(root, {
    'etc/os-release': `VERSION=${version}\n`,
    'etc/hostname': 'gateway\n',
    'usr/bin/tool': Buffer.alloc(70_000, 1),
    'usr/lib/libx.so.1': 'lib',
    'var/empty/.keep': '',
    'opt/modules/app/run.sh': '#!/bin/sh\necho old\n',
  });
  await chmod(join(root, 'usr/bin/tool'), 0o4755);
  await mkdir(join(root, 'srv/private'), { recursive: true });
  await chmod(join(root, 'srv/private'), 0o700);
  await symlink('libx.so.1', join(root, 'usr/lib/libx.so'));
  await symlink('/usr/bin/tool', join(root, 'usr/bin/tool-abs'));
  await link(join(root, 'etc/hostname'), join(root, 'etc/hostname.hard'));
  await execa('mkfifo', [join(root, 'var/fifo')]);
  if (asRoot) await chown(join(root, 'etc/os-release'), 1234, 5678);
  return root;
}

async function install(slot: SlotConfig, active: SlotConfig, bundlePath: string) {
  const reader = await BundleReader.open(createReadStream(bundlePath), { keyring });
  const backend = new FsSlot(slot);
  const r = await backend.write(reader.payloads(), { modules: reader.manifest.modules, active, checkpointBytes: 1 << 20 });
  expect(reader.complete).toBe(true);
  return { ...r, readBack: await backend.readBack() };
}

describe('fs slot: archive', () => {
  it('empties the slot and extracts the tree with links, modes and owners; the read-back matches', async () => {
    const { a, b } = await slots('archive');
    const src = await rootfs(join(dir, 'archive-src'), '1.0.0');
    await writeTree(b.path, { 'stale/file': 'x', 'etc/os-release': 'OLD' });
    const { path } = await treeBundle(dir, key, src, { version: '1.0.0', type: 'archive' });
    const r = await install(b, a, path);
    expect(r.readBack).toEqual(r.digest);
    expect(comparable(await snapshot(b.path))).toEqual(comparable(await snapshot(src)));
    expect((await stat(join(b.path, 'etc/hostname'))).ino).toBe((await stat(join(b.path, 'etc/hostname.hard'))).ino);
    expect((await stat(join(b.path, 'var/fifo'))).isFIFO()).toBe(true);
    if (asRoot) expect((await stat(join(b.path, 'etc/os-release'))).uid).toBe(1234);
    // Times are the tree's (tar keeps whole seconds), so the next module install can tell
    // unchanged files by size and mtime.
    expect((await stat(join(b.path, 'usr/bin/tool'))).mtimeMs).toBe(Math.floor((await stat(join(src, 'usr/bin/tool'))).mtimeMs / 1000) * 1000);
  });

  it('reads back a different digest once a byte or a mode changed', async () => {
    const { a, b } = await slots('archive-tamper');
    const src = await rootfs(join(dir, 'archive-tamper-src'), '1.0.1');
    const { path } = await treeBundle(dir, key, src, { version: '1.0.1', type: 'archive' });
    const r = await install(b, a, path);
    await writeFile(join(b.path, 'etc/os-release'), 'VERSION=1.0.X\n');
    expect((await new FsSlot(b).readBack()).sha256).not.toBe(r.digest.sha256);
    await writeFile(join(b.path, 'etc/os-release'), 'VERSION=1.0.1\n');
    if (asRoot) await chown(join(b.path, 'etc/os-release'), 1234, 5678);
    expect((await new FsSlot(b).readBack()).sha256).toBe(r.digest.sha256);
    await chmod(join(b.path, 'usr/bin/tool'), 0o755);
    expect((await new FsSlot(b).readBack()).sha256).not.toBe(r.digest.sha256);
  });
});

describe('fs slot: module', () => {
  it('makes the slot equal to the active one, copying only what differs, then replaces the target', async () => {
    const { a, b } = await slots('module');
    await rootfs(a.path, '2.0.0');
    // B holds an older system: one file equal (same size and mtime), one changed, one extra.
    await rootfs(b.path, '1.9.0');
    await writeFile(join(b.path, 'etc/extra'), 'left over');
    const same = join(b.path, 'usr/lib/libx.so.1');
    const sameTime = (await stat(join(a.path, 'usr/lib/libx.so.1'))).mtime;
    await utimes(same, sameTime, sameTime);
    // Same size, other mtime, same bytes: compared by content, not rewritten.
    const toolTime = new Date('2020-01-01T00:00:00Z');
    await utimes(join(b.path, 'usr/bin/tool'), toolTime, toolTime);
    const inodeSame = (await stat(same)).ino;
    const inodeTool = (await stat(join(b.path, 'usr/bin/tool'))).ino;

    const mod = await writeTree(join(dir, 'module-src'), { 'run.sh': '#!/bin/sh\necho new\n', 'conf/app.toml': 'x = 1\n' });
    await chmod(join(mod, 'run.sh'), 0o755);
    const { path, result } = await treeBundle(dir, key, mod, { version: '2.1.0', type: 'module', target: '/opt/modules/app' });
    const r = await install(b, a, path);

    expect(r.readBack).toEqual(r.digest);
    const outside = (rel: string) => rel === 'opt/modules/app' || rel.startsWith('opt/modules/app/');
    expect(comparable(await snapshot(b.path, outside))).toEqual(comparable(await snapshot(a.path, outside)));
    expect(comparable(await snapshot(join(b.path, 'opt/modules/app')))).toEqual(comparable(await snapshot(mod)));
    expect(await readFile(join(a.path, 'opt/modules/app/run.sh'), 'utf8')).toContain('old');
    // Unchanged files were not rewritten: same inode.
    expect((await stat(same)).ino).toBe(inodeSame);
    expect((await stat(join(b.path, 'usr/bin/tool'))).ino).toBe(inodeTool);
    expect(r.stats.copied).toBeGreaterThan(0);
    expect(r.stats.unchanged).toBeGreaterThan(0);
    expect(r.stats.removed).toBeGreaterThanOrEqual(1);
    // What came from the bundle is the module only; the rest was copied on the device.
    expect(result.manifest.modules).toHaveLength(1);
    expect(result.size).toBeLessThan(20_000);
  });

  it('does not descend into file systems mounted in the active slot (like rsync -x)', async (ctx) => {
    const { a, b } = await slots('module-mounts');
    await writeTree(a.path, { 'etc/os-release': 'x', 'proc/.keep': '' });
    const mounted = await execa('mount', ['-t', 'tmpfs', 'none', join(a.path, 'proc')], { reject: false });
    if (mounted.exitCode !== 0) {
      ctx.skip();
      return;
    }
    try {
      await writeFile(join(a.path, 'proc', 'cpuinfo'), 'not part of the slot');
      const mod = await writeTree(join(dir, 'module-mounts-src'), { 'run.sh': 'x' });
      const { path } = await treeBundle(dir, key, mod, { version: '2.3.0', type: 'module', target: '/opt/modules/app' });
      const r = await install(b, a, path);
      expect(r.readBack).toEqual(r.digest);
      expect((await stat(join(b.path, 'proc'))).isDirectory()).toBe(true);
      expect(await readdir(join(b.path, 'proc'))).toEqual([]);
    } finally {
      await execa('umount', [join(a.path, 'proc')]);
    }
  });

  it('never writes through a symlink in the target path', async () => {
    const { a, b } = await slots('module-symlink');
    const outsideDir = join(dir, 'outside');
    await mkdir(outsideDir, { recursive: true });
    await writeTree(a.path, { 'etc/os-release': 'x' });
    await symlink(outsideDir, join(a.path, 'opt'));
    const mod = await writeTree(join(dir, 'module-symlink-src'), { 'run.sh': 'evil' });
    const { path } = await treeBundle(dir, key, mod, { version: '2.2.0', type: 'module', target: '/opt/modules/app' });
    await expect(install(b, a, path)).rejects.toMatchObject({ code: 'SLOT_UNSAFE_PATH' });
    expect(await readdir(outsideDir)).toEqual([]);
  });

  it('refuses an image for an fs slot', async () => {
    const { a, b } = await slots('fs-image');
    const payloads = (async function* () {
      yield { module: { name: 'rootfs', type: 'image' as const, sha256: '0'.repeat(64), size: 0 }, index: 0, dataOffset: 0, startOffset: 0, chunks: (async function* () {})(), deferHashCheck: () => undefined };
    })();
    await expect(new FsSlot(b).write(payloads, { modules: [], active: a, checkpointBytes: 1 })).rejects.toMatchObject({ code: 'PAYLOAD_SLOT_MISMATCH' });
  });
});
