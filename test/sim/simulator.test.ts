// The device simulator: layout, boots through real grub-emu, crash flags, and the env
// round trip the agent's end-to-end tests rely on.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  boot,
  bootedSlot,
  bootUntilUp,
  createDevice,
  DEFAULT_ENV,
  openDevice,
  readEnv,
  setCrash,
  unsetEnv,
  writeEnv,
} from '../../scripts/sim/simulator.js';
import { grubSourceDir } from '../../scripts/sim/paths.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-sim-test-'));
  dirs.push(dir);
  return dir;
}

describe.concurrent('createDevice and openDevice', () => {
  it('lays out a raw device with the initial env', async () => {
    const root = join(await freshDir(), 'dev');
    const dev = await createDevice(root, { slotSize: 1 << 20 });
    expect(dev).toEqual({
      root,
      bootDir: join(root, 'boot'),
      grubenvPath: join(root, 'boot', 'grub', 'grubenv'),
      cmdlinePath: join(root, 'cmdline'),
      slots: { A: join(root, 'slots', 'A'), B: join(root, 'slots', 'B') },
      kind: 'raw',
      bootloader: 'grub',
      fwEnvConfig: join(root, 'fw_env.config'),
      fwEnvConfigBackup: join(root, 'fw_env.backup.config'),
    });
    expect((await stat(dev.slots.A)).size).toBe(1 << 20);
    expect((await stat(dev.slots.B)).size).toBe(1 << 20);
    expect((await stat(dev.grubenvPath)).size).toBe(1024);
    expect(await readEnv(dev.grubenvPath)).toEqual({ ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3' });
    expect(await readFile(dev.cmdlinePath, 'utf8')).toBe('');
    // The device runs copies of the project's scripts, as a flashed boot partition would.
    for (const file of ['grub.cfg', 'ota-select.cfg']) {
      expect(await readFile(join(dev.bootDir, 'grub', file), 'utf8')).toBe(await readFile(join(grubSourceDir(), file), 'utf8'));
    }
  });

  it('lays out an fs device with directories for slots and a chosen MAX_TRIES', async () => {
    const dev = await createDevice(join(await freshDir(), 'dev'), { kind: 'fs', maxTries: 5 });
    expect(dev.kind).toBe('fs');
    expect((await stat(dev.slots.A)).isDirectory()).toBe(true);
    expect((await stat(dev.slots.B)).isDirectory()).toBe(true);
    expect((await readEnv(dev.grubenvPath))['MAX_TRIES']).toBe('5');
  });

  it('raw slots default to 4 MiB', async () => {
    const dev = await createDevice(await freshDir());
    expect((await stat(dev.slots.A)).size).toBe(4 << 20);
  });

  it('openDevice finds the same device and its kind', async () => {
    const root = await freshDir();
    const made = await createDevice(root, { kind: 'fs' });
    expect(await openDevice(root)).toEqual(made);
  });

  it('refuses to create over an existing device, and bad options', async () => {
    const root = await freshDir();
    await createDevice(root);
    await expect(createDevice(root)).rejects.toThrow(/already holds a device/);
    await expect(createDevice(await freshDir(), { maxTries: 6 })).rejects.toThrow(/maxTries 6/);
    await expect(createDevice(await freshDir(), { slotSize: 0 })).rejects.toThrow(/slotSize/);
  });

  it('openDevice names what is missing', async () => {
    await expect(openDevice(await freshDir())).rejects.toThrow(/not a simulated device: .*grubenv is missing/);
  });
});

describe.concurrent('boot', () => {
  it('boots A on a fresh device, counts the try and writes the cmdline', async () => {
    const dev = await createDevice(await freshDir());
    const r = await boot(dev);
    expect([r.slot, r.crashed]).toEqual(['A', false]);
    expect(r.env).toEqual({ ...DEFAULT_ENV, A_TRY: '1' });
    expect(await readEnv(dev.grubenvPath)).toEqual(r.env);
    const cmdline = await readFile(dev.cmdlinePath, 'utf8');
    expect(cmdline.trim().split(/\s+/)).toContain('ota.slot=A');
    expect(await bootedSlot(dev)).toBe('A');
    expect(r.output).toContain('ota: slot A, attempt 1 of 3');
    // Escape sequences would break any parser reading GRUB's console.
    expect(r.output).not.toContain('\x1b');
    expect(r.output).not.toContain('\r');
  });

  it('follows ORDER written with writeEnv, like the agent arming slot B', async () => {
    const dev = await createDevice(await freshDir(), { kind: 'fs' });
    await writeEnv(dev.grubenvPath, { B_OK: '1', B_TRY: '0', ORDER: 'B A' });
    const r = await boot(dev);
    expect(r.slot).toBe('B');
    expect(r.env).toEqual({ ...DEFAULT_ENV, ORDER: 'B A', B_TRY: '1' });
    expect(await bootedSlot(dev)).toBe('B');
  });

  it('a committed slot (TRY reset by the agent) keeps booting', async () => {
    const dev = await createDevice(await freshDir());
    for (let i = 0; i < 5; i++) {
      const r = await boot(dev);
      expect([r.slot, r.env['A_TRY']]).toEqual(['A', '1']);
      await writeEnv(dev.grubenvPath, { A_TRY: '0' });
    }
  });

  it('an uncommitted slot falls back after MAX_TRIES boots', async () => {
    const dev = await createDevice(await freshDir(), { maxTries: 2 });
    const slots = [];
    for (let i = 0; i < 3; i++) slots.push((await boot(dev)).slot);
    expect(slots).toEqual(['A', 'A', 'B']);
    expect(await readEnv(dev.grubenvPath)).toEqual({ ...DEFAULT_ENV, MAX_TRIES: '2', A_TRY: '2', B_TRY: '1' });
  });

  it('a crashing slot reports crashed and leaves no cmdline to read', async () => {
    const dev = await createDevice(await freshDir());
    await boot(dev);
    expect(await bootedSlot(dev)).toBe('A');
    await setCrash(dev, 'A', true);
    const r = await boot(dev);
    expect([r.slot, r.crashed, r.env['A_TRY']]).toEqual(['A', true, '2']);
    expect(await readFile(dev.cmdlinePath, 'utf8')).toBe('');
    expect(await bootedSlot(dev)).toBeNull();
  });

  it('bootUntilUp: an armed B that panics is tried MAX_TRIES times, then A comes up', async () => {
    const dev = await createDevice(await freshDir(), { kind: 'fs' });
    await writeEnv(dev.grubenvPath, { B_OK: '1', B_TRY: '0', ORDER: 'B A' });
    await setCrash(dev, 'B', true);
    const up = await bootUntilUp(dev);
    expect([up.slot, up.boots]).toEqual(['A', 4]);
    expect(up.env).toEqual({ ...DEFAULT_ENV, ORDER: 'B A', A_TRY: '1', B_TRY: '3' });
    expect(await bootedSlot(dev)).toBe('A');
  });

  it('bootUntilUp gives up when both slots panic', async () => {
    const dev = await createDevice(await freshDir());
    await setCrash(dev, 'A', true);
    await setCrash(dev, 'B', true);
    await expect(bootUntilUp(dev, 7)).rejects.toThrow(/did not come up in 7 boots \(crashed in A A A B B B A\)/);
    // Seven boots: three of each, the reset, and a first try of A again.
    expect(await readEnv(dev.grubenvPath)).toEqual({ ...DEFAULT_ENV, A_TRY: '1', B_TRY: '0' });
  });

  it('setCrash off lets the slot boot again', async () => {
    const dev = await createDevice(await freshDir());
    await setCrash(dev, 'A', true);
    expect((await boot(dev)).crashed).toBe(true);
    await setCrash(dev, 'A', false);
    expect((await boot(dev)).crashed).toBe(false);
  });

  it('a device whose env lost its variables still boots A', async () => {
    const dev = await createDevice(await freshDir());
    await unsetEnv(dev.grubenvPath, ['ORDER', 'A_OK', 'B_OK', 'A_TRY', 'B_TRY', 'MAX_TRIES']);
    const r = await boot(dev);
    expect(r.slot).toBe('A');
    expect(r.env).toEqual({ A_TRY: '1' });
  });

  it('boots of different devices run in parallel, each with its own result', async () => {
    const devs = await Promise.all([0, 1, 2, 3].map(async () => createDevice(await freshDir())));
    await Promise.all(devs.map((d, i) => writeEnv(d.grubenvPath, { ORDER: i % 2 ? 'B A' : 'A B' })));
    const results = await Promise.all(devs.map((d) => boot(d)));
    expect(results.map((r) => r.slot)).toEqual(['A', 'B', 'A', 'B']);
    expect(await Promise.all(devs.map((d) => bootedSlot(d)))).toEqual(['A', 'B', 'A', 'B']);
  });

  it('boots of one device started together run one after the other', async () => {
    const dev = await createDevice(await freshDir());
    const results = await Promise.all([boot(dev), boot(dev), boot(dev)]);
    expect(results.map((r) => r.env['A_TRY'])).toEqual(['1', '2', '3']);
  });

  it('reports a boot directory without the selection script', async () => {
    const dev = await createDevice(await freshDir());
    await rm(join(dev.bootDir, 'grub', 'ota-select.cfg'));
    await expect(boot(dev)).rejects.toThrow(/no selection script/);
  });
});

describe('grubenv helpers', () => {
  it('writeEnv and readEnv round-trip values with spaces and =', async () => {
    const path = join(await freshDir(), 'grubenv');
    await writeEnv(path, { ORDER: 'B A', note: 'a=b c' });
    expect(await readEnv(path)).toEqual({ ORDER: 'B A', note: 'a=b c' });
    expect((await stat(path)).size).toBe(1024);
  });

  it('writeEnv rejects names and values grub-editenv would mangle', async () => {
    const path = join(await freshDir(), 'grubenv');
    await expect(writeEnv(path, { 'A B': '1' })).rejects.toThrow(/invalid grubenv variable name/);
    await expect(writeEnv(path, { ORDER: 'A\nB' })).rejects.toThrow(/line break/);
  });

  it('readEnv fails on a file that is not an env block', async () => {
    const path = join(await freshDir(), 'grubenv');
    await writeFile(path, 'not an env');
    await expect(readEnv(path)).rejects.toThrow(/invalid environment block/);
  });
});
