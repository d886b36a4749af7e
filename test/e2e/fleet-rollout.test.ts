// Fleet scenarios against a real `ota-server` process over 127.0.0.1, with 120 simulated
// devices per scenario (scripts/fleet/sim-devices.ts: real enrollments, signed check-ins
// verified like the agent does, the agent's reports): a failing release pauses its rollout at
// the threshold and no device beyond the open phase installs it; a healthy release walks the
// default ladder to 100 %; a maintenance window holds installs until the devices' clock
// enters it; the counts stay exact across a kill -9 of the server in the middle of a rollout.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimFleet, type Fate } from '../../scripts/fleet/sim-devices.js';
import { ServerProcess, api, createToken } from '../../scripts/fleet/server.js';
import type { RolloutView } from '../../server/db/rollouts.js';
import { tempDir } from '../helpers/cli.js';
import { makeBundle, releaseKey } from '../server/helpers.js';

const DEVICES = 120;
let dir: { dir: string; cleanup: () => Promise<void> };
let server: ServerProcess;
let data: string;
let ops: string;
let enroll: string;
let keyFile: string;
let key: Awaited<ReturnType<typeof releaseKey>>;

const healthy: Fate = () => ({ ok: true });
const broken: Fate = () => ({ ok: false, reason: 'health-check:app' });

async function upload(product: string, version: string): Promise<void> {
  const b = await makeBundle(join(dir.dir, 'in'), key, { product, version, compatible: ['evc'] });
  const res = await fetch(`${server.url}/v1/releases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/octet-stream' },
    body: await readFile(b.path),
  });
  expect(res.status, await res.text()).toBe(201);
}

async function fleet(product: string, count = DEVICES, attributes?: (i: number) => Record<string, string>): Promise<SimFleet> {
  return SimFleet.enroll({ url: server.url, enrollToken: enroll, count, prefix: product, compatible: 'evc', product, ...(attributes ? { attributes } : {}) });
}

async function show(id: string): Promise<{ rollout: RolloutView; failures: { reason: string; devices: number }[]; devices: { device: string; phase: number; status: string }[] }> {
  return api(server.url, ops, 'GET', `/v1/rollouts/${id}`);
}

beforeAll(async () => {
  dir = await tempDir('otaab-fleet-');
  key = await releaseKey('fleet');
  keyFile = join(dir.dir, 'release.pub');
  await writeFile(keyFile, key.publicKey);
  data = join(dir.dir, 'data');
  server = await ServerProcess.start({ data, releaseKeys: [keyFile], args: ['--poll-interval', '5'] });
  ops = await createToken(data, 'ops');
  enroll = await createToken(data, 'enroll');
});

afterAll(async () => {
  await server?.stop('SIGKILL').catch(() => undefined);
  await dir?.cleanup();
});

describe('staged rollouts with 120 devices', { timeout: 300_000 }, () => {
  it('a failing release pauses its rollout at the threshold; no device beyond the open phase installs it', async () => {
    const f = await fleet('charger');
    await upload('charger', '2.0.0');
    const ro = await api<RolloutView>(server.url, ops, 'POST', '/v1/rollouts', {
      product: 'charger',
      version: '2.0.0',
      phases: [{ count: 10 }, { percent: 50 }, { percent: 100 }],
      pauseFailures: 3,
      pauseFailureShare: null,
    });
    expect(ro.totals.members).toBe(DEVICES);
    expect(ro.counts.map((c) => c.members)).toEqual([10, 50, 60]);
    for (let i = 0; i < 4; i++) await f.round(broken);
    const s = await show(ro.id);
    expect(s.rollout.state).toBe('paused');
    expect(s.rollout.phase).toBe(0);
    expect(s.rollout.reason).toContain('3 failure(s) reached the threshold of 3');
    expect(s.rollout.reason).toContain('health-check:app');
    expect(s.failures).toEqual([{ reason: 'health-check:app', devices: s.rollout.totals.failure }]);
    const phaseOf = new Map(s.devices.map((m) => [m.device, m.phase]));
    const installers = f.devices.filter((d) => d.installed.includes('2.0.0'));
    // Check-ins run 16 at a time: those offered before the third failure landed may still
    // install, and every one of them is in the open phase.
    expect(installers.length).toBeGreaterThanOrEqual(3);
    for (const d of installers) expect(phaseOf.get(d.id)).toBe(0);
    expect(s.rollout.totals.failure).toBe(installers.length);
    // Paused: more check-ins offer it to no one.
    const before = f.devices.reduce((n, d) => n + d.offered.length, 0);
    for (let i = 0; i < 2; i++) await f.round(broken);
    expect(f.devices.reduce((n, d) => n + d.offered.length, 0)).toBe(before);

    // Resumed, the failures so far are acknowledged; aborted, it is over for good.
    const resumed = await api<RolloutView>(server.url, ops, 'POST', `/v1/rollouts/${ro.id}/resume`);
    expect(resumed).toMatchObject({ state: 'running', acknowledgedFailures: installers.length });
    const aborted = await api<RolloutView>(server.url, ops, 'POST', `/v1/rollouts/${ro.id}/abort`);
    expect(aborted.state).toBe('aborted');
    await f.round(broken);
    expect(f.devices.reduce((n, d) => n + d.offered.length, 0)).toBe(before);
    await expect(api(server.url, ops, 'POST', `/v1/rollouts/${ro.id}/resume`)).rejects.toThrow(/ROLLOUT_STATE/);
  });

  it('a healthy release walks the ladder 1 % → 10 % → 50 % → 100 %, each device counted once', async () => {
    const f = await fleet('gateway');
    await upload('gateway', '3.0.0');
    const ro = await api<RolloutView>(server.url, ops, 'POST', '/v1/rollouts', { product: 'gateway', version: '3.0.0', seed: 7 });
    expect(ro.counts.map((c) => c.members)).toEqual([2, 10, 48, 60]);
    const phases: number[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await show(ro.id);
      phases.push(s.rollout.phase);
      // Nobody outside the open phases was offered the release.
      const phaseOf = new Map(s.devices.map((m) => [m.device, m.phase]));
      for (const d of f.devices) if (d.offered.includes('3.0.0')) expect(phaseOf.get(d.id)).toBeLessThanOrEqual(s.rollout.phase);
      if (s.rollout.state === 'completed') break;
      await f.round(healthy);
    }
    const s = await show(ro.id);
    expect(s.rollout.state).toBe('completed');
    expect(phases.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(s.rollout.totals).toMatchObject({ members: DEVICES, success: DEVICES, failure: 0 });
    expect(f.devices.every((d) => d.version === '3.0.0' && d.installed.length === 1)).toBe(true);
  });

  it('devices enrolled after the start join the last open phase', async () => {
    const first = await SimFleet.enroll({ url: server.url, enrollToken: enroll, count: 100, prefix: 'meter-a', compatible: 'evc', product: 'meter' });
    await upload('meter', '1.0.0');
    const ro = await api<RolloutView>(server.url, ops, 'POST', '/v1/rollouts', { product: 'meter', version: '1.0.0', phases: [{ count: 5 }, { percent: 100 }], seed: 1 });
    const late = await SimFleet.enroll({ url: server.url, enrollToken: enroll, count: 20, prefix: 'meter-b', compatible: 'evc', product: 'meter' });
    await late.round(healthy);
    let s = await show(ro.id);
    expect(s.devices.filter((m) => m.device.startsWith('meter-b')).map((m) => m.phase)).toEqual(Array(20).fill(0));
    expect(late.devices.every((d) => d.version === '1.0.0')).toBe(true);
    await first.round(healthy);
    await first.round(healthy);
    s = await show(ro.id);
    expect(s.rollout.totals).toMatchObject({ members: 120, success: 120 });
  });

  it('a maintenance window holds installs until the devices\u2019 clock enters it; downloads happen before', async () => {
    let clock = new Date('2026-01-05T12:00:00Z'); // Monday 13:00 in Paris
    const f = await fleet('lamp');
    f.now = () => clock;
    const ids = f.devices.map((d) => d.id);
    await api(server.url, ops, 'POST', '/v1/devices/tags', { devices: ids, add: ['site-lyon'] });
    await api(server.url, ops, 'PUT', '/v1/windows/lyon-night', { tag: 'site-lyon', days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '02:00', durationMinutes: 120, timeZone: 'Europe/Paris' });
    await upload('lamp', '1.0.0');
    const ro = await api<RolloutView>(server.url, ops, 'POST', '/v1/rollouts', { product: 'lamp', version: '1.0.0', phases: [{ percent: 100 }], tags: ['site-lyon'] });
    expect(ro.totals.members).toBe(DEVICES);
    await f.round(healthy);
    await f.round(healthy);
    expect(f.devices.every((d) => d.windows.length === 1 && d.tx !== null && d.held)).toBe(true);
    expect(f.devices.some((d) => d.installed.length > 0)).toBe(false);
    let s = await show(ro.id);
    expect(s.rollout.totals).toMatchObject({ success: 0, installing: DEVICES });
    const dev = await api<{ reports: { reason: string | null }[] }>(server.url, ops, 'GET', `/v1/devices/${ids[0]}`);
    expect(dev.reports.some((r) => r.reason === 'held:window')).toBe(true);
    clock = new Date('2026-01-06T01:30:00Z'); // Tuesday 02:30 in Paris
    await f.round(healthy);
    s = await show(ro.id);
    expect(s.rollout.totals).toMatchObject({ success: DEVICES });
  });

  it('counts stay exact across a kill -9 of the server in the middle of a rollout', async () => {
    const f = await fleet('relay');
    await upload('relay', '1.0.0');
    const ro = await api<RolloutView>(server.url, ops, 'POST', '/v1/rollouts', { product: 'relay', version: '1.0.0', phases: [{ percent: 100 }], successShare: 1, pauseFailureShare: null });
    const fate: Fate = (d) => (Number(d.id.slice(-4)) % 7 === 3 ? { ok: false, reason: 'health-check:relay' } : { ok: true });
    const running = f.round(fate, 32);
    await new Promise((r) => setTimeout(r, 150));
    const port = server.port;
    await server.stop('SIGKILL');
    await running;
    // The kill landed mid-rollout: devices hold reports the server did not acknowledge.
    expect(f.devices.filter((d) => d.outbox.length > 0).length).toBeGreaterThan(0);
    server = await ServerProcess.start({ data, releaseKeys: [keyFile], port, args: ['--poll-interval', '5'] });
    for (let i = 0; i < 4; i++) await f.round(fate, 32);
    expect(f.devices.every((d) => d.outbox.length === 0 && d.tx === null)).toBe(true);
    const s = await show(ro.id);
    const ok = f.devices.filter((d) => d.version === '1.0.0').length;
    const failed = f.devices.filter((d) => d.installed.includes('1.0.0') && d.version !== '1.0.0').length;
    expect(ok + failed).toBe(DEVICES);
    // Reports sent before the kill, some acknowledged and some not, were sent again after the
    // restart with the same ids: every device counted once, the counts equal the devices' own.
    expect(s.rollout.totals).toMatchObject({ members: DEVICES, success: ok, failure: failed });
  });
});
