// The device side of fleet operations with a real agent (`ota-agent daemon` on the simulator
// with real GRUB) and a real `ota-server` over 127.0.0.1: a rollback the device cannot carry
// out shows on the server as refused with its reason; the busy gate holds the reboot while
// the device says "busy" (exit 75), the server shows that it waits, and the update goes on
// once the device is free; the device reports its attributes at check-in.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../../scripts/fleet/server.js';
import { COMPATIBLE, treeBundle, writeTree } from '../agent/helpers/bundles.js';
import { deviceView, enrolledDevice, publish, startStack, waitDevice, type Stack } from './server-helpers.js';

let stack: Stack;
let flagDir: string;
beforeAll(async () => {
  stack = await startStack();
  flagDir = await mkdtemp(join(tmpdir(), 'otaab-busy-'));
});
afterAll(async () => {
  await stack?.stop();
  await rm(flagDir, { recursive: true, force: true });
});

describe('a real agent in a fleet', { timeout: 600_000 }, () => {
  it('reports a refused rollback as refused with its reason, and holds its reboot while busy', async () => {
    const flag = join(flagDir, 'charging');
    const d = await enrolledDevice(stack, {
      id: 'evc-busy',
      config: {
        device: { id: 'evc-busy', compatible: COMPATIBLE, product: 'gateway', attributes: { site: 'lyon', hardware: 'rev-c' } },
        busyGate: { command: ['sh', '-c', `test -e '${flag}' && { echo 'charge in progress'; exit 75; }; exit 0`], recheckSeconds: 1, maxWaitSeconds: 3600 },
      },
    });
    const first = await waitDevice(stack, d.id, 'its first check-in', (v) => v.device.state === 'idle');
    expect((first.device as unknown as { product: string }).product).toBe('gateway');
    expect((first.device as unknown as { attributes: Record<string, string> }).attributes).toMatchObject({ site: 'lyon', hardware: 'rev-c', agentVersion: '0.1.0' });
    const filtered = await api<{ devices: { id: string }[] }>(stack.server.url, stack.ops, 'GET', '/v1/devices?attr=site=lyon,hardware=rev-c');
    expect(filtered.devices.map((x) => x.id)).toEqual([d.id]);

    // A factory device has no committed release in its other slot: nothing to roll back to.
    const request = await api<{ id: string }>(stack.server.url, stack.technician, 'POST', `/v1/devices/${d.id}/rollback`, { note: 'try' });
    const refused = await waitDevice(stack, d.id, 'the refused rollback', (v) =>
      v.rollbacks.some((r) => r.id === request.id && (r as unknown as { outcome: string | null }).outcome === 'refused'),
    );
    const rb = refused.rollbacks.find((r) => r.id === request.id) as unknown as { delivered: string | null; outcomeReason: string };
    expect(rb.delivered).not.toBeNull();
    expect(rb.outcomeReason).toMatch(/^ROLLBACK_UNAVAILABLE: slot B holds no committed release/);
    // The refusal is no transaction: the device's own record is untouched.
    expect(refused.device.lastOutcome).toBeNull();

    await writeFile(flag, '');
    const tree = await writeTree(join(stack.dir, 'tree-1'), { 'etc/os-release': 'VERSION=1.0.0\n', 'etc/healthy': 'yes\n' });
    await publish(stack, (await treeBundle(stack.dir, stack.key, tree, { version: '1.0.0', type: 'archive' })).path);
    const waiting = await waitDevice(stack, d.id, 'the busy hold', (v) => v.reports.some((r) => r.reason === 'held:busy'));
    const hold = waiting.reports.find((r) => r.reason === 'held:busy')!;
    expect(hold).toMatchObject({ version: '1.0.0', state: 'armed' });
    expect(hold.details).toMatchObject({ hold: 'busy', said: 'charge in progress' });
    // Busy for a while: no reboot, the target not even armed, check-ins go on.
    const reboots = await d.reboots();
    const seen = waiting.device as unknown as { lastSeen: string };
    await new Promise((r) => setTimeout(r, 4000));
    const still = await deviceView(stack, d.id);
    expect(await d.reboots()).toBe(reboots);
    expect(still.device.transaction).toMatchObject({ version: '1.0.0', state: 'armed' });
    expect((still.device as unknown as { lastSeen: string }).lastSeen > seen.lastSeen).toBe(true);

    await rm(flag);
    const done = await waitDevice(stack, d.id, 'v1 committed after the charge', (v) => v.device.transaction === null && v.device.version === '1.0.0');
    expect(done.device.lastOutcome).toMatchObject({ outcome: 'success', version: '1.0.0' });
    expect(await d.reboots()).toBe(reboots + 1);
    const committedAt = done.reports.find((r) => r.version === '1.0.0' && r.outcome === 'success')!.at;
    expect(hold.at < committedAt).toBe(true);
  });
});
