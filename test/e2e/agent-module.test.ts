// End to end on an fs device: an archive installs a whole root file system; a module bundle
// ships only its module, and the new slot is the running slot plus that module: everything
// outside <target> equals the active slot, copied on the device, unchanged files not rewritten.
import { chmod, mkdir, readFile, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pseudoRandom, treeBundle, writeTree } from '../agent/helpers/bundles.js';
import { agent, bootAndDaemon, json, withStore } from '../agent/helpers/proc.js';
import { makeRig, type Rig } from '../agent/helpers/rig.js';
import { comparable, snapshot } from '../agent/helpers/tree.js';
import type { StatusView } from '../../agent/actions/status.js';

let rig: Rig;
const TARGET = 'opt/modules/app';
const outsideTarget = (rel: string) => rel === TARGET || rel.startsWith(`${TARGET}/`);

beforeAll(async () => {
  rig = await makeRig({ kind: 'fs' });
  expect((await bootAndDaemon(rig)).code).toBe(0);
});
afterAll(async () => rig.cleanup());

async function moduleTree(version: string): Promise<string> {
  const dir = join(rig.dir, `module-${version}`);
  await writeTree(dir, { 'run.sh': `#!/bin/sh\necho app ${version}\n`, 'conf/app.toml': `version = "${version}"\n` });
  await chmod(join(dir, 'run.sh'), 0o755);
  return dir;
}

describe('fs slots: archive, then module-only releases', { timeout: 180_000 }, () => {
  let archiveSize = 0;

  it('installs a whole root file system from an archive', async () => {
    const root = join(rig.dir, 'rootfs-1.0.0');
    await writeTree(root, {
      'etc/healthy': 'yes\n',
      'etc/os-release': 'VERSION=1.0.0\n',
      'usr/bin/big': pseudoRandom(2 << 20, 9),
      'usr/lib/libapp.so.1': 'lib v1',
      [`${TARGET}/run.sh`]: '#!/bin/sh\necho app 1.0.0\n',
    });
    await symlink('libapp.so.1', join(root, 'usr/lib/libapp.so'));
    await mkdir(join(root, 'var/log'), { recursive: true });
    const b = await treeBundle(rig.dir, rig.key, root, { version: '1.0.0', type: 'archive' });
    archiveSize = (await stat(b.path)).size;
    const r = await agent(rig, ['install', b.path]);
    expect(r.code, r.stderr).toBe(0);
    expect(comparable(await snapshot(rig.dev.slots.B))).toEqual(comparable(await snapshot(root)));
    expect((await bootAndDaemon(rig)).code).toBe(0);
    expect((await json<StatusView>(rig, 'status')).slots.find((s) => s.name === 'B')).toMatchObject({ version: '1.0.0', status: 'committed', booted: true });
  });

  it('a module bundle changes only <target>; the rest equals the active slot; only the module came from the bundle', async () => {
    const mod = await moduleTree('1.1.0');
    const b = await treeBundle(rig.dir, rig.key, mod, { version: '1.1.0', type: 'module', target: `/${TARGET}` });
    const bundleSize = (await stat(b.path)).size;
    const r = await agent(rig, ['install', b.path]);
    expect(r.code, r.stderr).toBe(0);
    // Before the reboot, the new slot A: B's tree outside the target, the module inside it.
    expect(comparable(await snapshot(rig.dev.slots.A, outsideTarget))).toEqual(comparable(await snapshot(rig.dev.slots.B, outsideTarget)));
    expect(comparable(await snapshot(join(rig.dev.slots.A, TARGET)))).toEqual(comparable(await snapshot(mod)));
    expect(await readFile(join(rig.dev.slots.B, TARGET, 'run.sh'), 'utf8')).toContain('1.0.0');
    withStore(rig, (s) => {
      const t = s.transactions(1)[0]!;
      // Every byte read from the bundle: the whole (small) module bundle and nothing more;
      // the 2 MiB of the rest of the system came from the active slot, on the device.
      expect(t.bytesRead).toBe(bundleSize);
      expect(bundleSize * 20).toBeLessThan(archiveSize);
      const written = s.events({ transactionId: t.id }).find((e) => e.toState === 'installed')!;
      expect(written.details).toMatchObject({ copied: expect.any(Number), unchanged: expect.any(Number) });
      expect(written.details!.copied as number).toBeGreaterThan(0);
    });
    expect((await bootAndDaemon(rig)).code).toBe(0);
    expect((await json<StatusView>(rig, 'status')).slots.find((s) => s.name === 'A')).toMatchObject({ version: '1.1.0', status: 'committed', booted: true });
  });

  it('the next module install rewrites nothing that is already equal', async () => {
    // B still holds 1.0.0, whose files outside the target equal A's: they must stay as they are.
    const bigBefore = await stat(join(rig.dev.slots.B, 'usr/bin/big'));
    const mod = await moduleTree('1.2.0');
    const b = await treeBundle(rig.dir, rig.key, mod, { version: '1.2.0', type: 'module', target: `/${TARGET}` });
    const r = await agent(rig, ['install', b.path]);
    expect(r.code, r.stderr).toBe(0);
    const bigAfter = await stat(join(rig.dev.slots.B, 'usr/bin/big'));
    expect(bigAfter.ino).toBe(bigBefore.ino);
    expect(bigAfter.mtimeMs).toBe(bigBefore.mtimeMs);
    withStore(rig, (s) => {
      const t = s.transactions(1)[0]!;
      const written = s.events({ transactionId: t.id }).find((e) => e.toState === 'installed')!;
      expect(written.details).toMatchObject({ copied: 0 });
      expect(written.details!.unchanged as number).toBeGreaterThan(3);
    });
    expect(comparable(await snapshot(rig.dev.slots.B, outsideTarget))).toEqual(comparable(await snapshot(rig.dev.slots.A, outsideTarget)));
    expect((await bootAndDaemon(rig)).code).toBe(0);
    expect((await json<StatusView>(rig, 'status')).booted).toBe('B');
  });

  it('an archive whose system fails its health check is rolled back on an fs device too', async () => {
    // The health check looks for /etc/healthy in the booted slot; this release has none.
    const root = join(rig.dir, 'rootfs-2.0.0');
    await writeTree(root, { 'etc/os-release': 'VERSION=2.0.0\n' });
    const b = await treeBundle(rig.dir, rig.key, root, { version: '2.0.0', type: 'archive' });
    expect((await agent(rig, ['install', b.path])).code).toBe(0);
    const d = await bootAndDaemon(rig);
    expect(d.rebooted).toBe(true);
    expect((await bootAndDaemon(rig)).code).toBe(0);
    const status = await json<StatusView>(rig, 'status');
    expect(status.booted).toBe('B');
    expect(status.slots.find((s) => s.name === 'A')).toMatchObject({ version: '2.0.0', status: 'bad', bootable: false });
    expect(await readFile(join(rig.dev.slots.B, 'etc/healthy'), 'utf8')).toBe('yes\n');
  });
});
