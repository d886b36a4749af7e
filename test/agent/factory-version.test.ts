// device.factoryVersion: a device that never committed a release (or rolled back to the factory
// system) reports the factory's version at check-in, not none; a committed release outranks it.
import { afterAll, describe, expect, it } from 'vitest';
import { deviceAttributes, reportedVersion } from '../../agent/client/session.js';
import { loadConfig } from '../../agent/config/load.js';
import { bootUntilUp } from '../../scripts/sim/simulator.js';
import { withDev } from './helpers/agent-inproc.js';
import { makeRig, type Rig } from './helpers/rig.js';

const rigs: Rig[] = [];
afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

async function rig(device: Record<string, unknown>): Promise<Rig> {
  const r = await makeRig({ config: { device: { id: 'sim-1', compatible: 'qemu-x86-gw', ...device } } });
  rigs.push(r);
  await bootUntilUp(r.dev);
  return r;
}

describe('device.factoryVersion', () => {
  it('is the reported version and both slots\' until the agent installs anything', { timeout: 60_000 }, async () => {
    const r = await rig({ factoryVersion: '1.0.0' });
    await withDev(r, async (dev) => {
      expect(reportedVersion(dev)).toBe('1.0.0');
      expect(deviceAttributes(dev)).toMatchObject({ 'slot.A': '1.0.0', 'slot.B': '1.0.0' });
      dev.store.write('test: 2.0.0 committed in B', (w) => {
        w.slot('B', { version: '2.0.0', status: 'committed', transactionId: null });
        w.committedVersion('2.0.0');
      });
      expect(reportedVersion(dev)).toBe('2.0.0');
      expect(deviceAttributes(dev)).toMatchObject({ 'slot.A': '1.0.0', 'slot.B': '2.0.0' });
    });
  });

  it('is left out when not configured (no version, as before)', { timeout: 60_000 }, async () => {
    const r = await rig({});
    await withDev(r, async (dev) => {
      expect(reportedVersion(dev)).toBeNull();
      expect(deviceAttributes(dev)['slot.A']).toBeUndefined();
    });
  });

  it('must look like a release version', async () => {
    const r = await rig({ factoryVersion: 'factory' });
    await expect(loadConfig(r.configPath)).rejects.toThrow(/device\.factoryVersion.*release version/);
  });
});
