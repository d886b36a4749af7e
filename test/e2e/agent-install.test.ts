// End to end, real processes: `ota-agent install` from a file on a simulated device that
// boots through real GRUB (grub-emu), then `ota-agent daemon` after each boot.
//   v1 healthy → committed; v2 unhealthy → rolled back (health-check:app); v3 panics on
//   boot → GRUB falls back after MAX_TRIES → boot-failed. Status and history agree.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv, setCrash, bootUntilUp } from '../../scripts/sim/simulator.js';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { agent, bootAndDaemon, json, withStore } from '../agent/helpers/proc.js';
import { makeRig, rebootCount, releaseImage, type Rig } from '../agent/helpers/rig.js';
import type { StatusView } from '../../agent/actions/status.js';

let rig: Rig;
beforeAll(async () => {
  rig = await makeRig();
  // First power-on: GRUB boots A (A_TRY=1) and the daemon assesses that boot (A_TRY=0).
  const first = await bootAndDaemon(rig);
  expect(first.code, first.stderr).toBe(0);
});
afterAll(async () => rig.cleanup());

async function bundle(version: string, healthy: boolean, gzip = false): Promise<string> {
  return (await imageBundle(rig.dir, rig.key, releaseImage(version, healthy), { version, gzip })).path;
}

interface HistoryJson {
  transactions: Array<{ id: string; version: string; state: string; reason: string | null; events: Array<{ type: string; toState: string | null; details: Record<string, unknown> | null }> }>;
}

describe('ota-agent install, reboot, verify (real processes, real GRUB)', { timeout: 180_000 }, () => {
  it('v1 from a file: reboot → health checks pass → committed, B_TRY back to 0', async () => {
    const path = await bundle('1.0.0', true);
    const inst = await agent(rig, ['install', path]);
    expect(inst.code, inst.stderr).toBe(0);
    expect(inst.rebooted).toBe(true);
    expect(inst.stdout).toMatch(/install 1\.0\.0: rebooting; the system reboots into slot B/);
    // Armed: B first, B_OK=1, B_TRY=0 — and the image is on B, the active A untouched.
    expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0', A_OK: '1' });
    expect(sha256Hex((await readFile(rig.dev.slots.B)).subarray(0, 64 * 1024))).toBe(sha256Hex(releaseImage('1.0.0', true)));

    const d = await bootAndDaemon(rig);
    expect(d.code, d.stderr).toBe(0);
    expect(d.rebooted).toBe(false);
    expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0' });

    const status = await json<StatusView>(rig, 'status');
    expect(status.booted).toBe('B');
    expect(status.highestCommitted).toBe('1.0.0');
    expect(status.transaction).toBeNull();
    expect(status.slots.map((s) => [s.name, s.version, s.status, s.bootable, s.tries, s.booted])).toEqual([
      ['A', null, 'unknown', true, 0, false],
      ['B', '1.0.0', 'committed', true, 0, true],
    ]);
    const history = await json<HistoryJson>(rig, 'history');
    const tx = history.transactions[0]!;
    expect(tx).toMatchObject({ version: '1.0.0', state: 'committed', reason: null });
    expect(tx.events.filter((e) => e.type === 'transition').map((e) => e.toState)).toEqual(['downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed']);
    const health = tx.events.find((e) => e.type === 'health')!;
    expect(health.details).toMatchObject({ passed: true, results: [{ name: 'app', verdict: 'pass', excerpt: 'slot B healthy' }] });
    // Success is reported only after the commit: the outbox holds it last.
    withStore(rig, (s) => {
      const reports = s.reports(tx.id).filter((r) => r.kind === 'state').map((r) => r.body);
      expect(reports.at(-1)).toMatchObject({ state: 'committed', outcome: 'success', version: '1.0.0' });
      expect(reports.filter((r) => r.outcome !== undefined)).toHaveLength(1);
    });
  });

  it('v2 whose health check fails: rolled back to v1 with health-check:app, the bad slot OK=0', async () => {
    const path = await bundle('2.0.0', false, true);
    const inst = await agent(rig, ['install', path]);
    expect(inst.code, inst.stderr).toBe(0);
    const d = await bootAndDaemon(rig);
    // On A the check fails: the daemon rolls back and asks for the reboot into B.
    expect(d.rebooted).toBe(true);
    expect(d.stderr).toContain('health-check:app');
    expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', A_OK: '0', B_OK: '1' });
    const back = await bootAndDaemon(rig);
    expect(back.code, back.stderr).toBe(0);

    const status = await json<StatusView>(rig, 'status');
    expect(status.booted).toBe('B');
    expect(status.highestCommitted).toBe('1.0.0');
    expect(status.slots.find((s) => s.name === 'A')).toMatchObject({ version: '2.0.0', status: 'bad', bootable: false });
    const tx = (await json<HistoryJson>(rig, 'history')).transactions[0]!;
    expect(tx).toMatchObject({ version: '2.0.0', state: 'rolled-back', reason: 'health-check:app' });
    expect(tx.events.find((e) => e.type === 'health')!.details).toMatchObject({ passed: false, results: [{ verdict: 'fail', excerpt: expect.stringContaining('slot A: image not healthy') }] });
    withStore(rig, (s) => {
      expect(s.reports(tx.id).filter((r) => r.kind === 'state').at(-1)!.body).toMatchObject({ state: 'rolled-back', outcome: 'failure', reason: 'health-check:app' });
    });
  });

  it('v3 whose slot panics on boot: GRUB falls back after MAX_TRIES, the agent on the old slot records boot-failed', async () => {
    const path = await bundle('3.0.0', true);
    const inst = await agent(rig, ['install', path]);
    expect(inst.code, inst.stderr).toBe(0);
    await setCrash(rig.dev, 'A', true);
    const reboots = await rebootCount(rig);
    const up = await bootUntilUp(rig.dev);
    expect(up).toMatchObject({ slot: 'B', boots: 4 });
    expect(up.env).toMatchObject({ A_TRY: '3' });
    const d = await agent(rig, ['daemon']);
    expect(d.code, d.stderr).toBe(0);
    // Already on the old slot: nothing to reboot.
    expect(await rebootCount(rig)).toBe(reboots);
    const tx = (await json<HistoryJson>(rig, 'history')).transactions[0]!;
    expect(tx).toMatchObject({ version: '3.0.0', state: 'rolled-back', reason: 'boot-failed' });
    expect(tx.events.filter((e) => e.type === 'transition').map((e) => e.toState)).toEqual(['downloading', 'installed', 'armed', 'rebooting', 'rolling-back', 'rolled-back']);
    expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', A_OK: '0', B_OK: '1' });
    const status = await json<StatusView>(rig, 'status');
    expect(status.slots.find((s) => s.name === 'A')).toMatchObject({ version: '3.0.0', status: 'bad' });
    expect(status.highestCommitted).toBe('1.0.0');
    await setCrash(rig.dev, 'A', false);
  });

  it('prints status and history for people', async () => {
    const s = await agent(rig, ['status']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/booted\s+slot B; next boot: slot B/);
    expect(s.stdout).toMatch(/^B\*\s+raw\s+1\.0\.0\s+committed/m);
    const h = await agent(rig, ['history']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/install 3\.0\.0 {2}slot B -> A {2}rolled-back \(boot-failed\)/);
    expect(h.stdout).toMatch(/app: fail exit status 1: slot A: image not healthy/);
  });
});
