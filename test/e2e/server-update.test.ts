// End to end over 127.0.0.1, every part a real process: `ota-server start`, releases uploaded
// and published with `ota-release upload`, a simulated device (real GRUB) enrolled with
// `ota-agent enroll` and running `ota-agent daemon`. The device goes v1 → v3 through the
// server; v2 fails its health check, rolls back, and the server shows why; a technician's
// rollback requested from the server lands on the device and is reported.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../../scripts/fleet/server.js';
import { treeBundle, writeTree } from '../agent/helpers/bundles.js';
import { deviceView, enrolledDevice, publish, startStack, waitDevice, type DeviceView, type Stack } from './server-helpers.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => stack?.stop());

/** A whole root file system release; a healthy one ships /etc/healthy (the fleet's health check). */
async function release(version: string, healthy: boolean): Promise<string> {
  const tree = await writeTree(join(stack.dir, `tree-${version}`), {
    'etc/os-release': `VERSION=${version}\n`,
    'usr/bin/app': `#!/bin/sh\necho app ${version}\n`,
    ...(healthy ? { 'etc/healthy': `release ${version}\n` } : {}),
  });
  return (await treeBundle(stack.dir, stack.key, tree, { version, type: 'archive' })).path;
}

const atRest = (v: DeviceView): boolean => v.device.transaction === null;

describe('a device updating through the server', { timeout: 600_000 }, () => {
  it('installs v1, rolls back v2 with health-check:app, installs v3, and follows a technician rollback', async () => {
    const d = await enrolledDevice(stack, { id: 'gw-update' });
    await waitDevice(stack, d.id, 'its first check-in', (v) => v.device.slot === 'A' && v.device.state === 'idle');

    await publish(stack, await release('1.0.0', true));
    await waitDevice(stack, d.id, 'v1 committed', (v) => atRest(v) && v.device.version === '1.0.0' && v.device.lastOutcome?.outcome === 'success');

    await publish(stack, await release('2.0.0', false));
    const failed = await waitDevice(stack, d.id, 'v2 rolled back', (v) => atRest(v) && v.device.lastOutcome?.version === '2.0.0');
    expect(failed.device.lastOutcome).toMatchObject({ outcome: 'failure', reason: 'health-check:app' });
    expect(failed.device.version).toBe('1.0.0');
    expect(failed.transactions.find((t) => t.version === '2.0.0')).toMatchObject({ state: 'rolled-back', outcome: 'failure', reason: 'health-check:app' });
    // The failure report carries the health check's own words.
    const v2final = failed.reports.find((r) => r.version === '2.0.0' && r.outcome === 'failure')!;
    expect(JSON.stringify(v2final.details)).toContain('/etc/healthy is missing');

    await publish(stack, await release('3.0.0', true));
    await waitDevice(stack, d.id, 'v3 committed', (v) => atRest(v) && v.device.version === '3.0.0' && v.device.lastOutcome?.outcome === 'success');
    const before = await d.status();
    expect(before.booted).toBe('A');

    const request = await api<{ id: string }>(stack.server.url, stack.technician, 'POST', `/v1/devices/${d.id}/rollback`, { note: 'site reports trouble with v3' });
    const rolled = await waitDevice(stack, d.id, 'the technician rollback', (v) => atRest(v) && v.device.lastOutcome?.reason === 'technician');
    expect(rolled.rollbacks.find((r) => r.id === request.id)?.delivered).not.toBeNull();
    expect(rolled.device.slot).toBe('B');
    const final = rolled.reports.find((r) => r.outcome !== null && r.reason === 'technician')!;
    expect(final).toMatchObject({ version: '1.0.0', state: 'rolled-back', outcome: 'failure' });
    expect(final.details).toMatchObject({ kind: 'rollback', directive: request.id });

    // On the device: running v1 from B again, v3 still committed in A (a fallback), and the
    // server's rollback recorded as such.
    const st = (await d.status()) as { booted: string; slots: { name: string; version: string | null; status: string }[] };
    expect(st.booted).toBe('B');
    expect(st.slots.map((s) => [s.name, s.version, s.status])).toEqual([
      ['A', '3.0.0', 'committed'],
      ['B', '1.0.0', 'committed'],
    ]);
    const history = JSON.parse((await d.agent(['history', '--json'])).stdout) as { transactions: { kind: string; origin: string; state: string; reason: string | null }[] };
    expect(history.transactions.map((t) => [t.kind, t.origin, t.state, t.reason])).toEqual([
      ['rollback', 'server', 'rolled-back', 'technician'],
      ['install', 'server', 'committed', null],
      ['install', 'server', 'rolled-back', 'health-check:app'],
      ['install', 'server', 'committed', null],
    ]);

    // Every report reached the server exactly once, in the order the device made them.
    const all = (await deviceView(stack, d.id)).reports;
    expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
    expect(all.filter((r) => r.outcome !== null).map((r) => `${r.version}:${r.outcome}:${r.reason ?? ''}`).reverse()).toEqual([
      '1.0.0:success:',
      '2.0.0:failure:health-check:app',
      '3.0.0:success:',
      '1.0.0:failure:technician',
    ]);
  });
});
