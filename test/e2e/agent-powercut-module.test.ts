// Power cuts during a module install on an fs device: cut in each state of the install (and
// after each of its durable writes), boot through GRUB, come to rest committed; the running
// slot, which the install copies from, is never written (not a byte, mode, inode or mtime).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootedSlot, readEnv } from '../../scripts/sim/simulator.js';
import { treeBundle, writeTree } from '../agent/helpers/bundles.js';
import { drive } from '../agent/helpers/cut.js';
import { agent, bootAndDaemon, withStore } from '../agent/helpers/proc.js';
import { makeRig, type Rig } from '../agent/helpers/rig.js';
import { snapshot } from '../agent/helpers/tree.js';

const rigs: Rig[] = [];
afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

/** An fs device running 1.0.0 from slot B (an archive), ready for a module update into A. */
async function device(): Promise<{ rig: Rig; module: string }> {
  const rig = await makeRig({ kind: 'fs' });
  rigs.push(rig);
  expect((await bootAndDaemon(rig)).code).toBe(0);
  const root = await writeTree(join(rig.dir, 'rootfs'), {
    'etc/healthy': 'yes\n',
    'usr/bin/app': 'binary v1\n',
    'opt/modules/app/run.sh': 'echo 1.0.0\n',
  });
  const archive = await treeBundle(rig.dir, rig.key, root, { version: '1.0.0', type: 'archive' });
  expect((await agent(rig, ['install', archive.path])).code).toBe(0);
  expect((await bootAndDaemon(rig)).code).toBe(0);
  const mod = await writeTree(join(rig.dir, 'module'), { 'run.sh': 'echo 1.1.0\n' });
  const bundle = await treeBundle(rig.dir, rig.key, mod, { version: '1.1.0', type: 'module', target: '/opt/modules/app' });
  return { rig, module: bundle.path };
}

async function atRest(rig: Rig, running: Awaited<ReturnType<typeof snapshot>>): Promise<void> {
  withStore(rig, (s) => {
    expect(s.current()).toBeUndefined();
    expect(s.transactions(1)[0]).toMatchObject({ version: '1.1.0', state: 'committed' });
  });
  expect(await bootedSlot(rig.dev)).toBe('A');
  expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ ORDER: 'A B', A_OK: '1', A_TRY: '0' });
  expect(await readFile(join(rig.dev.slots.A, 'opt/modules/app/run.sh'), 'utf8')).toBe('echo 1.1.0\n');
  expect(await readFile(join(rig.dev.slots.A, 'usr/bin/app'), 'utf8')).toBe('binary v1\n');
  // Slot B ran the system while the update was written: identical down to inodes and times.
  expect(await snapshot(rig.dev.slots.B)).toEqual(running);
}

describe('power cuts during a module install on fs slots', { timeout: 180_000 }, () => {
  for (const state of ['downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed']) {
    it(`cut in ${state}: boots, resumes, commits; the running slot untouched`, async () => {
      const { rig, module } = await device();
      const running = await snapshot(rig.dev.slots.B);
      const driven = await drive(rig, module, { env: { OTA_CRASH_AT_STATE: state } }, true);
      expect(driven.cutRun).toBeDefined();
      await atRest(rig, running);
    });
  }

  it('cut after each durable write of the install command', async () => {
    const probe = await device();
    const trace = join(probe.rig.dir, 'trace');
    await drive(probe.rig, probe.module, undefined, false, (i): Record<string, string> => (i === 0 ? { OTA_DURABLE_TRACE: trace } : {}));
    const writes = (await readFile(trace, 'utf8')).trim().split('\n');
    expect(writes.some((w) => w.includes('\tslot-sync\t'))).toBe(true);
    for (let k = 1; k <= writes.length; k++) {
      const { rig, module } = await device();
      const running = await snapshot(rig.dev.slots.B);
      const driven = await drive(rig, module, { run: 0, env: { OTA_CRASH_AFTER_WRITE: String(k) } }, true);
      expect(driven.cutRun, `write ${k}: ${writes[k - 1]}`).toBe(0);
      await atRest(rig, running);
    }
  }, 300_000);
});
