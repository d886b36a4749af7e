// The reliability suite's own checks, as pure functions and on real files: an invariant that
// cannot fail proves nothing, so each one is shown to catch the violation it is there for.
import { chmod, mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fillPattern, identifySlot, treeDigest, type ReleaseContent } from '../../scripts/reliability/digest.js';
import { checkAtRest, checkBootableSlots, checkServer, envOk, type DeviceSeen, type SlotSeen } from '../../scripts/reliability/invariants.js';
import { parseBootLine } from '../../scripts/reliability/rig.js';
import { allPoints, stridePoints } from '../../scripts/reliability/powercut.js';
import { sha256Hex } from '../../shared/hashing.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'otaab-rel-test-'));
  dirs.push(d);
  return d;
}

const slot = (holds: string | null, ok = true, store: SlotSeen['store'] = { version: holds === 'factory' ? null : holds, status: 'committed' }): SlotSeen => ({ ok, holds, store });
const device = (A: SlotSeen, B: SlotSeen, booted: 'A' | 'B' = 'A'): DeviceSeen => ({ booted, env: { A_OK: A.ok ? '1' : '0', B_OK: B.ok ? '1' : '0' }, slots: { A, B } });

describe('bootable slots', () => {
  it('pass when every bootable slot holds the verified release the store names', () => {
    expect(checkBootableSlots(device(slot('factory'), slot('1.0.0')))).toEqual([]);
  });

  it('catch a bootable slot holding bytes of no release (a half-written slot)', () => {
    expect(checkBootableSlots(device(slot('factory'), slot(null, true, { version: '1.0.0', status: 'installing' })))).toEqual([expect.stringContaining('slot B is bootable')]);
  });

  it('ignore a disarmed slot, whatever it holds', () => {
    expect(checkBootableSlots(device(slot('factory'), slot(null, false, { version: '1.0.0', status: 'installing' })))).toEqual([]);
  });

  it('catch a store that names another release than the bytes', () => {
    expect(checkBootableSlots(device(slot('factory'), slot('1.0.0', true, { version: '1.1.0', status: 'committed' })))).toEqual([expect.stringContaining('holds 1.0.0 but the store says 1.1.0')]);
  });

  it('catch a store that does not open', () => {
    expect(checkBootableSlots({ ...device(slot('factory'), slot('factory')), storeError: 'SQLITE_CORRUPT' })).toEqual([expect.stringContaining('does not open')]);
  });

  it('read X_OK as GRUB does: unset is bootable, anything but 1 is not', () => {
    expect([envOk({}, 'A'), envOk({ A_OK: '1' }, 'A'), envOk({ A_OK: '0' }, 'A'), envOk({ A_OK: 'x' }, 'A')]).toEqual([true, true, false, false]);
  });
});

describe('at rest', () => {
  const expected = { state: 'committed' as const, booted: 'B' as const };
  const done = { state: 'committed', reason: null, finished: true };

  it('passes a committed update booted from its slot', () => {
    expect(checkAtRest(device(slot('factory'), slot('1.0.0'), 'B'), done, false, expected)).toEqual([]);
  });

  it('catches a transaction still in flight, or not ended as without the cut', () => {
    expect(checkAtRest(device(slot('factory'), slot('1.0.0'), 'B'), { ...done, state: 'verifying', finished: false }, true, expected)).toEqual(
      expect.arrayContaining([expect.stringContaining('still in flight'), expect.stringContaining('did not end'), expect.stringContaining('without the cut it ends committed')]),
    );
  });

  it('catches a failure without a reason', () => {
    expect(checkAtRest(device(slot('factory'), slot('1.1.0', false, { version: '1.1.0', status: 'bad' }), 'A'), { state: 'failed', reason: null, finished: true }, false, { state: 'failed', booted: 'A' })).toEqual([
      expect.stringContaining('without a reason'),
    ]);
  });

  it('catches a booted slot the store does not hold as committed', () => {
    expect(checkAtRest(device(slot('factory'), slot('1.0.0', true, { version: '1.0.0', status: 'installed' }), 'B'), done, false, expected)).toEqual([expect.stringContaining('not committed')]);
  });
});

describe('the server', () => {
  const r = (id: string, outcome: string | null, reason: string | null = null) => ({ id, transaction: 't1', outcome, reason });

  it('passes exactly one outcome that matches the device', () => {
    expect(checkServer([r('1', null), r('2', 'failure', 'boot-failed')], 't1', { state: 'rolled-back', reason: 'boot-failed' })).toEqual([]);
  });

  it('catches a lost outcome, two outcomes, a duplicated report and a wrong reason', () => {
    expect(checkServer([r('1', null)], 't1', { state: 'committed', reason: null })).toEqual([expect.stringContaining('0 final outcomes')]);
    expect(checkServer([r('1', 'success'), r('2', 'success')], 't1', { state: 'committed', reason: null })).toEqual([expect.stringContaining('2 final outcomes')]);
    expect(checkServer([r('1', null), r('1', null), r('2', 'success')], 't1', { state: 'committed', reason: null })).toEqual([expect.stringContaining('twice')]);
    expect(checkServer([r('2', 'failure', 'timeout')], 't1', { state: 'rolled-back', reason: 'health-check:app' })).toEqual([expect.stringContaining('reason is timeout')]);
  });
});

describe('slot contents', () => {
  it('recognise a tree, and not the same tree with one byte, one mode or one link changed', async () => {
    const d = await temp();
    const tree = join(d, 't');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc', 'healthy'), 'yes\n');
    await symlink('etc/healthy', join(tree, 'link'));
    const known = new Map<string, ReleaseContent>([['1.0.0', { kind: 'fs', digest: await treeDigest(tree) }]]);
    expect(await identifySlot(tree, known)).toBe('1.0.0');
    await writeFile(join(tree, 'etc', 'healthy'), 'yeS\n');
    expect(await identifySlot(tree, known)).toBeNull();
    await writeFile(join(tree, 'etc', 'healthy'), 'yes\n');
    await chmod(join(tree, 'etc', 'healthy'), 0o600);
    expect(await identifySlot(tree, known)).toBeNull();
    await chmod(join(tree, 'etc', 'healthy'), 0o644);
    expect(await identifySlot(tree, known)).toBe('1.0.0');
    await rm(join(tree, 'link'));
    await symlink('/etc/shadow', join(tree, 'link'));
    expect(await identifySlot(tree, known)).toBeNull();
  });

  it('recognise a raw image at the start of a larger slot, and not a slot with a flipped byte', async () => {
    const d = await temp();
    const path = join(d, 'slot');
    await writeFile(path, Buffer.alloc(1 << 20));
    await fillPattern(path, 3);
    const image = Buffer.from('HEALTHY 1.0.0\n'.repeat(100));
    const fh = await open(path, 'r+');
    await fh.write(image, 0, image.length, 0);
    const known = new Map<string, ReleaseContent>([['1.0.0', { kind: 'raw', length: image.length, sha256: sha256Hex(image) }]]);
    expect(await identifySlot(path, known)).toBe('1.0.0');
    await fh.write(Buffer.from('X'), 0, 1, 700);
    await fh.close();
    expect(await identifySlot(path, known)).toBeNull();
  });
});

describe('the sweep', () => {
  it('cuts after every write of every process, and the CI stride keeps the first and last of each', () => {
    const points = allPoints([['store a', 'store b', 'grubenv c', 'store d', 'slot-sync e'], ['store f', 'store g']]);
    expect(points.map((p) => `${p.process}:${p.k}`)).toEqual(['0:1', '0:2', '0:3', '0:4', '0:5', '1:1', '1:2']);
    expect(stridePoints(points, 3).map((p) => `${p.process}:${p.k}`)).toEqual(['0:1', '0:4', '0:5', '1:1', '1:2']);
  });

  it('reads the env of a boot from the supervisor line', () => {
    expect(parseBootLine('booted slot B after 2 failed boot(s) (GRUB: ORDER="B A" A_OK=1 A_TRY=0 B_OK=1 B_TRY=1)')).toEqual({
      slot: 'B',
      env: { ORDER: 'B A', A_OK: '1', A_TRY: '0', B_OK: '1', B_TRY: '1' },
    });
    expect(parseBootLine('reboot')).toBeUndefined();
  });
});
