// End to end: the technician's `ota-agent rollback`. Without a committed release in the other
// slot it refuses and changes nothing; with one it switches (no download), reboots, and the
// device comes up on the other slot with the rollback recorded as `technician`.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv } from '../../scripts/sim/simulator.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { agent, bootAndDaemon, json, withStore } from '../agent/helpers/proc.js';
import { makeRig, rebootCount, releaseImage, type Rig } from '../agent/helpers/rig.js';
import type { StatusView } from '../../agent/actions/status.js';

let rig: Rig;
beforeAll(async () => {
  rig = await makeRig();
  expect((await bootAndDaemon(rig)).code).toBe(0);
});
afterAll(async () => rig.cleanup());

async function installCommitted(version: string): Promise<void> {
  const b = await imageBundle(rig.dir, rig.key, releaseImage(version, true), { version });
  expect((await agent(rig, ['install', b.path])).code).toBe(0);
  expect((await bootAndDaemon(rig)).code).toBe(0);
}

describe('ota-agent rollback', { timeout: 180_000 }, () => {
  it('refuses when the other slot holds no committed release, changing nothing', async () => {
    await installCommitted('1.0.0');
    const env = await readFile(rig.dev.grubenvPath);
    const reboots = await rebootCount(rig);
    const r = await agent(rig, ['rollback']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ota-agent rollback: ROLLBACK_UNAVAILABLE: slot A holds no committed release/);
    expect((await readFile(rig.dev.grubenvPath)).equals(env)).toBe(true);
    expect(await rebootCount(rig)).toBe(reboots);
    expect(withStore(rig, (s) => s.current())).toBeUndefined();
  });

  it('switches to the other committed slot and reboots into it', async () => {
    await installCommitted('2.0.0');
    expect((await json<StatusView>(rig, 'status')).booted).toBe('A');
    const r = await agent(rig, ['rollback']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.rebooted).toBe(true);
    expect(r.stdout).toMatch(/rollback 1\.0\.0: rolling-back; the system reboots back to slot B/);
    // Nothing was downloaded or written to a slot: only grubenv changed. A stays bootable.
    expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0', A_OK: '1' });
    const d = await bootAndDaemon(rig);
    expect(d.code, d.stderr).toBe(0);
    const status = await json<StatusView>(rig, 'status');
    expect(status.booted).toBe('B');
    expect(status.transaction).toBeNull();
    expect(status.slots.map((s) => [s.name, s.version, s.status])).toEqual([
      ['A', '2.0.0', 'committed'],
      ['B', '1.0.0', 'committed'],
    ]);
    // The boot on B was assessed like any other: healthy, its try counter reset.
    expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ B_TRY: '0' });
    withStore(rig, (s) => {
      const t = s.transactions(1)[0]!;
      expect(t).toMatchObject({ kind: 'rollback', state: 'rolled-back', reason: 'technician', version: '1.0.0', sourceSlot: 'A', targetSlot: 'B' });
      expect(s.reports(t.id).at(-1)!.body).toMatchObject({ state: 'rolled-back', reason: 'technician', details: { kind: 'rollback' } });
    });
  });

  it('can roll forward again the same way', async () => {
    const r = await agent(rig, ['rollback']);
    expect(r.code, r.stderr).toBe(0);
    expect((await bootAndDaemon(rig)).code).toBe(0);
    expect((await json<StatusView>(rig, 'status')).booted).toBe('A');
  });
});
