// The state machine as a table of scenarios, in process, on the simulator with real GRUB:
// each asserts the exact chain of states entered and the reports queued for the server.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boot, bootUntilUp, readEnv, setCrash } from '../../scripts/sim/simulator.js';
import { daemonPass } from '../../agent/actions/daemon.js';
import { machineFor } from '../../agent/actions/device.js';
import { install } from '../../agent/actions/install.js';
import { markSlot, rollback } from '../../agent/actions/technician.js';
import { serializeManifest } from '../../shared/manifest.js';
import { imageBundle } from './helpers/bundles.js';
import { chain, logSink, reports, withDev } from './helpers/agent-inproc.js';
import { makeRig, rebootCount, releaseImage, type Rig } from './helpers/rig.js';

const rigs: Rig[] = [];
afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

async function rig(config: Record<string, unknown> = {}): Promise<Rig> {
  const r = await makeRig({ config });
  rigs.push(r);
  await bootUntilUp(r.dev);
  return r;
}

async function release(r: Rig, version: string, healthy = true): Promise<string> {
  return (await imageBundle(r.dir, r.key, releaseImage(version, healthy), { version })).path;
}

/** install → reboot through GRUB → daemon; returns the transaction id. */
async function installAndBoot(r: Rig, version: string, healthy = true): Promise<string> {
  const path = await release(r, version, healthy);
  const { log } = logSink();
  const run = await withDev(r, (dev) => install(dev, { source: path, log }));
  expect(run.status).toBe('awaiting-reboot');
  await bootUntilUp(r.dev);
  await withDev(r, (dev) => daemonPass(dev, log));
  return run.tx.id;
}

const INSTALL = ['downloading', 'installed', 'armed', 'rebooting'];

describe.concurrent('state machine scenarios', { timeout: 180_000 }, () => {
  it('install, reboot, healthy: committed', async () => {
    const r = await rig();
    const id = await installAndBoot(r, '1.0.0');
    await withDev(r, async (dev) => {
      expect(chain(dev, id)).toEqual([...INSTALL, 'verifying', 'committed']);
      expect(reports(dev, id)).toEqual([...INSTALL, 'verifying', 'committed:success']);
      expect(dev.store.transaction(id)).toMatchObject({ state: 'committed', reason: null });
      expect(dev.store.slots().B).toMatchObject({ status: 'committed', version: '1.0.0' });
      expect(dev.store.highestCommitted()).toBe('1.0.0');
    });
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0' });
  });

  it('install, reboot, unhealthy: rolled back with health-check:app', async () => {
    const r = await rig();
    const id = await installAndBoot(r, '2.0.0', false);
    expect(await rebootCount(r)).toBe(2);
    await bootUntilUp(r.dev);
    const { log } = logSink();
    await withDev(r, (dev) => daemonPass(dev, log));
    await withDev(r, async (dev) => {
      expect(chain(dev, id)).toEqual([...INSTALL, 'verifying', 'rolling-back', 'rolling-back', 'rolled-back']);
      expect(reports(dev, id)).toEqual([...INSTALL, 'verifying', 'rolling-back', 'rolling-back', 'rolled-back:failure:health-check:app']);
      expect(dev.store.slots().B.status).toBe('bad');
      expect(dev.store.highestCommitted()).toBeNull();
      const health = dev.store.events({ transactionId: id }).find((e) => e.type === 'health')!;
      expect(health.details).toMatchObject({ passed: false, results: [{ name: 'app', verdict: 'fail', excerpt: expect.stringContaining('image not healthy') }] });
    });
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ ORDER: 'A B', A_OK: '1', B_OK: '0' });
  });

  it('new slot panics: GRUB falls back after MAX_TRIES and the old slot records boot-failed', async () => {
    const r = await rig();
    const path = await release(r, '3.0.0');
    const { log } = logSink();
    const run = await withDev(r, (dev) => install(dev, { source: path, log }));
    await setCrash(r.dev, 'B', true);
    const up = await bootUntilUp(r.dev);
    expect(up).toMatchObject({ slot: 'A', boots: 4 });
    await withDev(r, (dev) => daemonPass(dev, log));
    await withDev(r, async (dev) => {
      expect(chain(dev, run.tx.id)).toEqual([...INSTALL, 'rolling-back', 'rolled-back']);
      expect(dev.store.transaction(run.tx.id)).toMatchObject({ state: 'rolled-back', reason: 'boot-failed' });
      expect(reports(dev, run.tx.id).at(-1)).toBe('rolled-back:failure:boot-failed');
    });
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ ORDER: 'A B', B_OK: '0', B_TRY: '3' });
    expect(await rebootCount(r)).toBe(1);
  });

  it('a failing reboot command leaves the transaction in rebooting, resumed at the next start', async () => {
    const flag = 'reboot-works';
    const r = await makeRig();
    rigs.push(r);
    const cfg = JSON.parse(await readFile(r.configPath, 'utf8')) as Record<string, unknown>;
    cfg.rebootCommand = ['sh', '-c', `test -f '${join(r.dir, flag)}' || { echo 'reboot: no permission' >&2; exit 1; }; echo reboot >> '${r.rebootLog}'`];
    await writeFile(r.configPath, JSON.stringify(cfg));
    await bootUntilUp(r.dev);
    const path = await release(r, '1.0.0');
    const { log } = logSink();
    const err = await withDev(r, (dev) => install(dev, { source: path, log })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REBOOT_FAILED', kind: 'transient' });
    await writeFile(join(r.dir, flag), '');
    const pass = await withDev(r, (dev) => daemonPass(dev, log));
    expect(pass.transaction?.status).toBe('awaiting-reboot');
    await bootUntilUp(r.dev);
    await withDev(r, (dev) => daemonPass(dev, log));
    await withDev(r, async (dev) => {
      const id = dev.store.transactions(1)[0]!.id;
      expect(chain(dev, id)).toEqual([...INSTALL, 'rebooting', 'verifying', 'committed']);
      expect(dev.store.events({ transactionId: id }).some((e) => e.type === 'error' && String(e.details?.error).includes('REBOOT_FAILED'))).toBe(true);
    });
  });

  it('a reboot that never happens ends in a loop failure with the target disarmed', async () => {
    const r = await rig({ maxTransitions: 10 });
    const path = await release(r, '1.0.0');
    const { log } = logSink();
    await withDev(r, (dev) => install(dev, { source: path, log }));
    // The reboot command "succeeds" but the system never goes down: each start re-enters.
    for (let k = 0; k < 10; k++) {
      const pass = await withDev(r, (dev) => daemonPass(dev, log));
      if (pass.transaction?.status === 'finished') break;
    }
    await withDev(r, async (dev) => {
      const t = dev.store.transactions(1)[0]!;
      expect(t).toMatchObject({ state: 'failed', reason: 'loop' });
      expect(chain(dev, t).at(-1)).toBe('failed');
      expect(t.transitions).toBeLessThanOrEqual(11);
    });
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ B_OK: '0' });
    // The next boot goes to the old slot.
    expect((await boot(r.dev)).slot).toBe('A');
  });

  it('mark-good commits a transaction being verified; mark-bad rolls one back (technician)', async () => {
    const r = await rig({ healthChecks: [{ name: 'never', command: ['false'] }] });
    const { log } = logSink();
    const p1 = await release(r, '1.0.0');
    const t1 = await withDev(r, (dev) => install(dev, { source: p1, log }));
    await bootUntilUp(r.dev);
    // The operator acts while the transaction waits in verifying (as after a daemon was
    // killed during its checks): enter it as resume would, without running the checks.
    await withDev(r, async (dev) => {
      const machine = machineFor(dev, { log });
      machine.enter(dev.store.current()!, 'verifying', undefined, { resumed: 'rebooting' });
    });
    await withDev(r, async (dev) => {
      await markSlot(dev, 'good', log);
      expect(chain(dev, t1.tx.id).slice(-2)).toEqual(['verifying', 'committed']);
      expect(dev.store.transaction(t1.tx.id)!.reason).toBe('technician');
    });
    const p2 = await release(r, '2.0.0');
    const t2 = await withDev(r, (dev) => install(dev, { source: p2, log }));
    await bootUntilUp(r.dev);
    await withDev(r, async (dev) => {
      machineFor(dev, { log }).enter(dev.store.current()!, 'verifying');
    });
    const run = await withDev(r, (dev) => markSlot(dev, 'bad', log));
    expect(run.transaction?.status).toBe('awaiting-reboot');
    await bootUntilUp(r.dev);
    await withDev(r, (dev) => daemonPass(dev, log));
    await withDev(r, async (dev) => {
      expect(dev.store.transaction(t2.tx.id)).toMatchObject({ state: 'rolled-back', reason: 'technician' });
      expect(dev.booted).toBe('B');
    });
  });

  it('technician rollback: refused without a committed other slot, then switches and reboots', async () => {
    const r = await rig();
    const { log } = logSink();
    await installAndBoot(r, '1.0.0');
    await withDev(r, async (dev) => {
      await expect(rollback(dev, { log })).rejects.toMatchObject({ code: 'ROLLBACK_UNAVAILABLE' });
      expect(dev.store.current()).toBeUndefined();
    });
    await installAndBoot(r, '2.0.0');
    const reboots = await rebootCount(r);
    const run = await withDev(r, (dev) => rollback(dev, { log }));
    expect(run).toMatchObject({ status: 'awaiting-reboot', tx: { kind: 'rollback', version: '1.0.0', targetSlot: 'B', reason: 'technician' } });
    expect(await rebootCount(r)).toBe(reboots + 1);
    // The slot left keeps OK=1: it is the fallback should the other not come up.
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', A_OK: '1', B_OK: '1', B_TRY: '0' });
    expect((await bootUntilUp(r.dev)).slot).toBe('B');
    const pass = await withDev(r, (dev) => daemonPass(dev, log));
    expect(pass.assessment?.passed).toBe(true);
    await withDev(r, async (dev) => {
      expect(chain(dev, run.tx.id)).toEqual(['rolling-back', 'rolling-back', 'rolled-back']);
      expect(reports(dev, run.tx.id).at(-1)).toBe('rolled-back:failure:technician');
      expect(dev.store.slots()).toMatchObject({ A: { status: 'committed', version: '2.0.0' }, B: { status: 'committed', version: '1.0.0' } });
    });
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ B_TRY: '0' });
  });

  it('technician rollback to a slot that does not boot fails with boot-failed and marks it bad', async () => {
    const r = await rig();
    const { log } = logSink();
    await installAndBoot(r, '1.0.0');
    await installAndBoot(r, '2.0.0');
    const run = await withDev(r, (dev) => rollback(dev, { log }));
    await setCrash(r.dev, 'B', true);
    expect((await bootUntilUp(r.dev)).slot).toBe('A');
    await withDev(r, (dev) => daemonPass(dev, log));
    await withDev(r, (dev) => {
      expect(dev.store.transaction(run.tx.id)).toMatchObject({ state: 'failed', reason: 'boot-failed' });
      expect(dev.store.slots().B.status).toBe('bad');
      return Promise.resolve();
    });
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ B_OK: '0', A_OK: '1' });
  });

  it('refuses a bundle whose manifest is not the one a directive announced, before touching anything', async () => {
    const r = await rig();
    const announced = await imageBundle(r.dir, r.key, releaseImage('5.0.0', true), { version: '5.0.0' });
    const other = await release(r, '5.0.1');
    const { log } = logSink();
    const env = await readEnv(r.dev.grubenvPath);
    await withDev(r, async (dev) => {
      await expect(install(dev, { source: other, manifest: serializeManifest(announced.result.manifest), origin: 'server', directiveId: 'd-1', log })).rejects.toMatchObject({ code: 'BUNDLE_CHANGED' });
      expect(dev.store.transactions()).toEqual([]);
    });
    expect(await readEnv(r.dev.grubenvPath)).toEqual(env);
    // The announced one goes through, recorded as the server's.
    const run = await withDev(r, (dev) => install(dev, { source: announced.path, manifest: serializeManifest(announced.result.manifest), origin: 'server', directiveId: 'd-1', log }));
    expect(run.tx).toMatchObject({ origin: 'server', directiveId: 'd-1', state: 'rebooting' });
    await withDev(r, async (dev) => {
      expect(dev.store.reports(run.tx.id)[0]!.body).toMatchObject({ details: { directive: 'd-1' } });
    });
  });

  it('mark-good and mark-bad refuse a transaction that is not being verified', async () => {
    const r = await rig();
    const path = await release(r, '1.0.0');
    const { log } = logSink();
    await withDev(r, (dev) => install(dev, { source: path, log }));
    await withDev(r, async (dev) => {
      await expect(markSlot(dev, 'good', log)).rejects.toMatchObject({ code: 'MARK_REFUSED' });
      await expect(markSlot(dev, 'bad', log)).rejects.toMatchObject({ code: 'MARK_REFUSED' });
      await expect(rollback(dev, { log })).rejects.toMatchObject({ code: 'TRANSACTION_IN_PROGRESS' });
    });
  });
});
