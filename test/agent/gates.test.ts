// The gates before arming and rebooting: the busy command (exit 75) and the maintenance
// windows the server sent, on the simulator with real GRUB; a hold leaves the target disarmed
// and is reported once.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootUntilUp, readEnv } from '../../scripts/sim/simulator.js';
import { machineFor } from '../../agent/actions/device.js';
import { install } from '../../agent/actions/install.js';
import { HoldError } from '../../agent/machine/gates.js';
import { AGENT_VERSION } from '../../agent/infra/version.js';
import { saveWindows } from '../../agent/infra/windows-file.js';
import { DAYS, windowState } from '../../shared/windows.js';
import { imageBundle } from './helpers/bundles.js';
import { logSink, withDev } from './helpers/agent-inproc.js';
import { makeRig, rebootCount, releaseImage, type Rig } from './helpers/rig.js';
import { ROOT } from '../helpers/cli.js';

const rigs: Rig[] = [];
afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

async function rig(config: Record<string, unknown> = {}): Promise<Rig> {
  const r = await makeRig({ config });
  rigs.push(r);
  await bootUntilUp(r.dev);
  return r;
}

const held = (dev: { store: { reports(id: string): { body: Record<string, unknown> }[] } }, id: string): unknown[] =>
  dev.store.reports(id).map((r) => r.body.reason).filter((x) => typeof x === 'string' && x.startsWith('held:'));

describe('maintenance windows (pure)', () => {
  it('is open inside a window in its own time zone, and says when the next one opens', () => {
    // 2026-01-05 is a Monday. 02:00-04:00 Europe/Paris (UTC+1 in winter) is 01:00-03:00 UTC.
    const w = [{ days: ['mon' as const], start: '02:00', durationMinutes: 120, timeZone: 'Europe/Paris' }];
    expect(windowState(w, new Date('2026-01-05T01:30:00Z'))).toEqual({ open: true });
    expect(windowState(w, new Date('2026-01-05T00:30:00Z'))).toEqual({ open: false, opensInMinutes: 30 });
    expect(windowState(w, new Date('2026-01-05T03:00:00Z'))).toEqual({ open: false, opensInMinutes: 7 * 24 * 60 - 120 });
    // Across midnight: Sunday 23:00 for 2 h is open on Monday 00:30 local.
    expect(windowState([{ days: ['sun'], start: '23:00', durationMinutes: 120, timeZone: 'UTC' }], new Date('2026-01-05T00:30:00Z'))).toEqual({ open: true });
    expect(windowState([], new Date())).toEqual({ open: true });
  });
});

describe('gates', { timeout: 180_000 }, () => {
  it('reports the agent version it checks in with: the one of package.json', async () => {
    const pkg = JSON.parse(await import('node:fs/promises').then((f) => f.readFile(join(ROOT, 'package.json'), 'utf8'))) as { version: string };
    expect(AGENT_VERSION).toBe(pkg.version);
  });

  it('busy gate: holds before arming while the command exits 75, goes on when it exits 0', async () => {
    const flagDir = await mkdtemp(join(tmpdir(), 'otaab-busy-'));
    const flag = join(flagDir, 'charging');
    const r = await rig({ busyGate: { command: ['sh', '-c', `test -e '${flag}' && { echo charging; exit 75; }; exit 0`], maxWaitSeconds: 3600 } });
    await writeFile(flag, '');
    const path = (await imageBundle(r.dir, r.key, releaseImage('1.0.0', true), { version: '1.0.0' })).path;
    const { log } = logSink();
    await withDev(r, async (dev) => {
      const err = await install(dev, { source: path, log }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HoldError);
      const tx = dev.store.current()!;
      expect(tx.state).toBe('armed');
      expect(held(dev, tx.id)).toEqual(['held:busy']);
      // Asked again while still busy: no second report, still disarmed.
      await expect(machineFor(dev, { log }).run(tx)).rejects.toMatchObject({ code: 'UPDATE_HELD' });
      expect(held(dev, tx.id)).toEqual(['held:busy']);
      expect((await readEnv(r.dev.grubenvPath)).B_OK).toBe('0');
      expect(await rebootCount(r)).toBe(0);
      await rm(flagDir, { recursive: true });
      const run = await machineFor(dev, { log }).run(dev.store.current()!);
      expect(run.status).toBe('awaiting-reboot');
    });
    expect(await rebootCount(r)).toBe(1);
    expect(await readEnv(r.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', B_OK: '1' });
  });

  it('busy gate: goes on after maxWaitSeconds and says so', async () => {
    const r = await rig({ busyGate: { command: ['sh', '-c', 'exit 75'], maxWaitSeconds: 0 } });
    const path = (await imageBundle(r.dir, r.key, releaseImage('1.0.0', true), { version: '1.0.0' })).path;
    const { log } = logSink();
    await withDev(r, async (dev) => {
      const run = await install(dev, { source: path, log });
      expect(run.status).toBe('awaiting-reboot');
      expect(held(dev, run.tx.id)).toContain('held:busy-timeout');
    });
  });

  it('windows: a server install waits outside its window and goes on inside it (clock injected)', async () => {
    const r = await rig();
    const now = new Date();
    // A window that opened 6 hours ago and lasted one hour: closed now.
    const start = new Date(now.getTime() - 6 * 3600_000);
    const hhmm = `${String(start.getUTCHours()).padStart(2, '0')}:${String(start.getUTCMinutes()).padStart(2, '0')}`;
    const startDay = DAYS[start.getUTCDay()]!;
    await saveWindows(join(r.dir, 'data'), [{ days: [startDay], start: hhmm, durationMinutes: 60, timeZone: 'UTC' }]);
    const path = (await imageBundle(r.dir, r.key, releaseImage('1.0.0', true), { version: '1.0.0' })).path;
    const { log } = logSink();
    await withDev(r, async (dev) => {
      expect(dev.config.dataDir).toBe(join(r.dir, 'data'));
      const err = await install(dev, { source: path, origin: 'server', log }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UPDATE_HELD' });
      const tx = dev.store.current()!;
      expect(held(dev, tx.id)).toEqual(['held:window']);
      expect(await rebootCount(r)).toBe(0);
      // The device's clock reaches the window: it goes on.
      const inside = new Date(start.getTime() + 10 * 60_000);
      const run = await machineFor(dev, { log, now: () => inside }).run(tx);
      expect(run.status).toBe('awaiting-reboot');
    });
    expect(await rebootCount(r)).toBe(1);
  });
});
