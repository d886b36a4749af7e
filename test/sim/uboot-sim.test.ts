// The simulator's U-Boot devices: every boot runs the project's boot.scr in Debian's real
// U-Boot under qemu-system-aarch64, on the env the agent's U-Boot backend writes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UBootBootloader } from '../../agent/boot/uboot.js';
import { boot, bootUntilUp, bootedSlot, createDevice, openDevice, setCrash } from '../../scripts/sim/simulator.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('simulator: U-Boot devices', () => {
  it('boots A, boots B once the agent\'s backend arms it, and falls back to A when B crashes 3 times', async () => {
    const root = await mkdtemp(join(tmpdir(), 'otaab-sim-uboot-'));
    dirs.push(root);
    const dev = await createDevice(join(root, 'dev'), { kind: 'fs', bootloader: 'uboot' });
    expect((await openDevice(dev.root)).bootloader).toBe('uboot');
    const agent = new UBootBootloader({ primaryConfig: dev.fwEnvConfig, backupConfig: dev.fwEnvConfigBackup });

    const first = await boot(dev);
    expect(first).toMatchObject({ slot: 'A', crashed: false });
    expect(first.output).toContain('ota: slot A, attempt 1 of 3');
    expect(await bootedSlot(dev)).toBe('A');
    expect(await agent.getState('A')).toEqual({ ok: true, tries: 1 });
    await agent.setState('A', 'good');

    await agent.setPrimary('B');
    await setCrash(dev, 'B', true);
    const up = await bootUntilUp(dev);
    expect(up).toMatchObject({ slot: 'A', boots: 4 });
    expect(await agent.env()).toMatchObject({ ORDER: 'B A', A_TRY: '1', B_TRY: '3', B_OK: '1' });
    await setCrash(dev, 'B', false);
    await agent.setPrimary('B');
    expect((await boot(dev)).slot).toBe('B');
    expect(await agent.getState('B')).toEqual({ ok: true, tries: 1 });
  }, 180_000);
});
