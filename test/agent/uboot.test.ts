// The U-Boot backend through the real fw_printenv / fw_setenv (libubootenv) on env files made
// by mkenvimage: both copies written, primary first; a torn or corrupt copy is survived.
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fwEnvDevice, UBootBootloader } from '../../agent/boot/uboot.js';
import { durableCount } from '../../agent/infra/durable.js';
import { OtaError } from '../../shared/errors.js';
import { createUbootEnv, readUbootEnv, writeFwEnvConfig } from '../../scripts/sim/ubootenv.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const FACTORY = { ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3' };

async function device(vars: Record<string, string> = FACTORY) {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-uboot-'));
  dirs.push(dir);
  const env = join(dir, 'otaab.env');
  const bak = join(dir, 'otaab.bak');
  const primaryConfig = join(dir, 'fw_env.config');
  const backupConfig = join(dir, 'fw_env.backup.config');
  await createUbootEnv(env, vars);
  await createUbootEnv(bak, vars);
  await writeFwEnvConfig(primaryConfig, env);
  await writeFwEnvConfig(backupConfig, bak);
  return { dir, env, bak, primaryConfig, backupConfig, boot: new UBootBootloader({ primaryConfig, backupConfig }) };
}

/** Flips bytes inside the data, as a torn write leaves it: the CRC no longer matches. */
async function corrupt(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from('XX'), 0, 2, 20);
  await fh.close();
}

describe('U-Boot backend', () => {
  it('arms a slot: X_OK=1 X_TRY=0 ORDER="X Y", in the primary and then the second copy', async () => {
    const d = await device({ ...FACTORY, B_OK: '0', B_TRY: '3' });
    const before = durableCount();
    await d.boot.setPrimary('B');
    expect(durableCount() - before).toBe(2);
    for (const c of [d.primaryConfig, d.backupConfig]) {
      expect(await readUbootEnv(c)).toEqual({ ...FACTORY, ORDER: 'B A', B_OK: '1', B_TRY: '0' });
    }
    expect(await d.boot.getPrimary()).toBe('B');
    expect(await d.boot.getState('B')).toEqual({ ok: true, tries: 0 });
  });

  it('rolls back with the other slot disabled, and marks slots good and bad', async () => {
    const d = await device({ ...FACTORY, ORDER: 'B A', B_TRY: '1' });
    await d.boot.setPrimary('A', { disableOther: true });
    expect(await readUbootEnv(d.backupConfig)).toMatchObject({ ORDER: 'A B', A_OK: '1', A_TRY: '0', B_OK: '0', B_TRY: '1' });
    await d.boot.setState('B', 'good');
    expect(await d.boot.getState('B')).toEqual({ ok: true, tries: 0 });
    await d.boot.setState('A', 'bad');
    expect(await d.boot.getPrimary()).toBe('B');
  });

  it('writes nothing when both copies already hold the values', async () => {
    const d = await device();
    const before = durableCount();
    const bytes = await readFile(d.env);
    await d.boot.setState('A', 'good');
    expect(durableCount()).toBe(before);
    expect(await readFile(d.env)).toEqual(bytes);
  });

  it('reads the second copy when the primary is torn, as boot.cmd does, and repairs it at the next write', async () => {
    const d = await device({ ...FACTORY, ORDER: 'B A', B_TRY: '2' });
    await corrupt(d.env);
    await expect(readUbootEnv(d.primaryConfig)).rejects.toThrow();
    expect(await d.boot.env()).toEqual({ ...FACTORY, ORDER: 'B A', B_TRY: '2' });
    expect(await d.boot.getState('B')).toEqual({ ok: true, tries: 2 });
    await d.boot.setState('B', 'good');
    // The primary is whole again and equal to the second copy: the whole env, not just B's.
    expect(await readUbootEnv(d.primaryConfig)).toEqual({ ...FACTORY, ORDER: 'B A' });
    expect(await readUbootEnv(d.backupConfig)).toEqual({ ...FACTORY, ORDER: 'B A' });
  });

  it('a cut during the primary write leaves the old env; a cut after it, the new one', async () => {
    // Cut inside the first fw_setenv: the primary is torn, the second copy is the old env.
    const a = await device();
    const old = await readFile(a.env);
    await a.boot.setPrimary('B');
    const neu = await readFile(a.env);
    await writeFile(a.env, Buffer.concat([neu.subarray(0, 24), old.subarray(24)]));
    await writeFile(a.bak, old);
    expect(await a.boot.getPrimary()).toBe('A');
    // Cut between the two writes: the primary is new, the second copy still old.
    await writeFile(a.env, neu);
    expect(await a.boot.getPrimary()).toBe('B');
    // Cut inside the second write: the primary is new, the second copy torn.
    await writeFile(a.bak, Buffer.concat([neu.subarray(0, 24), old.subarray(24)]));
    expect(await a.boot.getPrimary()).toBe('B');
    // The next write makes both whole and equal.
    await a.boot.setState('B', 'good');
    expect(await readUbootEnv(a.backupConfig)).toEqual(await readUbootEnv(a.primaryConfig));
  });

  it('with both copies corrupt reads the defaults boot.cmd falls back to (A first), and a write restores both', async () => {
    const d = await device({ ...FACTORY, ORDER: 'B A' });
    await corrupt(d.env);
    await corrupt(d.bak);
    expect(await d.boot.env()).toEqual({});
    expect(await d.boot.getPrimary()).toBe('A');
    await d.boot.setPrimary('A');
    expect(await readUbootEnv(d.backupConfig)).toEqual({ A_OK: '1', A_TRY: '0', ORDER: 'A B' });
  });

  it('a missing env file is a clear BOOTENV_FAILED, not an empty env', async () => {
    const d = await device();
    await rm(d.env);
    await rm(d.bak);
    const err = await d.boot.env().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OtaError);
    expect((err as OtaError).code).toBe('BOOTENV_FAILED');
    expect((err as Error).message).toContain('mkenvimage');
    await expect(d.boot.setPrimary('B')).rejects.toMatchObject({ code: 'BOOTENV_FAILED' });
  });

  it('a failing fw_setenv is BOOTENV_FAILED and names the copy', async () => {
    const d = await device();
    const boot = new UBootBootloader({ primaryConfig: d.primaryConfig, backupConfig: d.backupConfig, fwSetenv: 'false' });
    await expect(boot.setPrimary('B')).rejects.toMatchObject({ code: 'BOOTENV_FAILED', message: expect.stringContaining('primary') });
    expect(await d.boot.getPrimary()).toBe('A');
  });

  it('reads the env file out of an fw_env.config', () => {
    expect(fwEnvDevice('# comment\n\n/boot/otaab.env 0x0 0x4000\n')).toBe('/boot/otaab.env');
    expect(fwEnvDevice('# nothing\n')).toBeUndefined();
  });
});
