// The GRUB backend through the real grub-editenv: power-safe writes, the RAUC-style
// interface, and the agent's reading of the env matching grub/ota-select.cfg's rules.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GrubBootloader } from '../../agent/boot/grub.js';
import { maxTries, nextBoot, parseEnvBlock, parseEnvList, setEnvBlock, slotOrder, slotState } from '../../agent/boot/grubenv.js';
import { parseBootedSlot, readBootedSlot } from '../../agent/boot/cmdline.js';
import { durableCount } from '../../agent/infra/durable.js';
import { createEnv, readEnv } from '../../scripts/sim/grubenv.js';
import { execa } from 'execa';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function envFile(vars: Record<string, string> = { ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3' }) {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-grub-'));
  dirs.push(dir);
  const path = join(dir, 'grubenv');
  await createEnv(path, vars);
  return { dir, path, boot: new GrubBootloader(path) };
}

describe('GRUB backend', () => {
  it('arms a slot in one write: X_OK=1 X_TRY=0 ORDER="X Y"', async () => {
    const { path, boot } = await envFile({ ORDER: 'A B', A_OK: '1', B_OK: '0', A_TRY: '0', B_TRY: '3', MAX_TRIES: '3' });
    const before = durableCount();
    await boot.setPrimary('B');
    expect(durableCount() - before).toBe(1);
    expect(await readEnv(path)).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0', A_OK: '1' });
    expect(await boot.getPrimary()).toBe('B');
  });

  it('rolls back in one write: X_OK=0 ORDER="Y X"', async () => {
    const { path, boot } = await envFile({ ORDER: 'B A', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '1', MAX_TRIES: '3' });
    await boot.setPrimary('A', { disableOther: true });
    expect(await readEnv(path)).toMatchObject({ ORDER: 'A B', A_OK: '1', A_TRY: '0', B_OK: '0' });
    expect(await boot.getState('B')).toEqual({ ok: false, tries: 1 });
  });

  it('marks good (X_OK=1 X_TRY=0) and bad (X_OK=0), skipping writes that change nothing', async () => {
    const { path, boot } = await envFile({ ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '2', B_TRY: '0', MAX_TRIES: '3' });
    await boot.setState('A', 'good');
    expect(await readEnv(path)).toMatchObject({ A_OK: '1', A_TRY: '0' });
    const before = durableCount();
    await boot.setState('A', 'good');
    expect(durableCount()).toBe(before);
    await boot.setState('B', 'bad');
    expect(await readEnv(path)).toMatchObject({ B_OK: '0' });
    expect(await boot.getPrimary()).toBe('A');
  });

  it('replaces the file by rename, leaves no grubenv.new behind and keeps the 1024-byte block', async () => {
    const { dir, path, boot } = await envFile();
    const inode = (await stat(path)).ino;
    await boot.setPrimary('B');
    expect((await stat(path)).ino).not.toBe(inode);
    expect((await stat(path)).size).toBe(1024);
    expect(await readdir(dir)).toEqual(['grubenv']);
    expect((await readFile(path, 'latin1')).startsWith('# GRUB Environment Block')).toBe(true);
  });

  it('reports grub-editenv failures as transient BOOTENV_FAILED', async () => {
    const boot = new GrubBootloader('/nonexistent/dir/grubenv');
    await expect(boot.env()).rejects.toMatchObject({ code: 'BOOTENV_FAILED', kind: 'transient' });
    await expect(boot.setPrimary('A')).rejects.toMatchObject({ code: 'BOOTENV_FAILED' });
  });
});

describe('reading grubenv without grub-editenv', () => {
  it('reads what grub-editenv list reads, for every file grub-editenv wrote in the plain form', async () => {
    const { path } = await envFile();
    const sets = [
      ['B_OK=0'],
      ['ORDER=B A', 'B_TRY=2'],
      ['EMPTY='],
      ['x_1=a b c', 'MAX_TRIES=5'],
      ['LONG=' + 'v'.repeat(700)],
    ];
    for (const set of sets) {
      await execa('grub-editenv', [path, 'set', ...set]);
      const listed = parseEnvList((await execa('grub-editenv', [path, 'list'])).stdout);
      expect(parseEnvBlock(await readFile(path))).toEqual(listed);
    }
    await execa('grub-editenv', [path, 'unset', 'EMPTY', 'LONG']);
    expect(parseEnvBlock(await readFile(path))).toEqual(parseEnvList((await execa('grub-editenv', [path, 'list'])).stdout));
  });

  it('leaves escaped values, other sizes and garbage to grub-editenv list', async () => {
    const { path, boot } = await envFile();
    // grub-editenv stores a backslash and a line end escaped: not the plain form.
    await execa('grub-editenv', [path, 'set', 'ESC=a\\b', 'NL=x\ny']);
    const block = await readFile(path);
    expect(parseEnvBlock(block)).toBeUndefined();
    // Through list, the backend still reads it (as before).
    const env = await boot.env();
    expect(env.ORDER).toBe('A B');
    expect(env).toEqual(parseEnvList((await execa('grub-editenv', [path, 'list'])).stdout));
    expect(parseEnvBlock(block.subarray(0, 1000))).toBeUndefined();
    const bad = Buffer.from(block);
    bad[3] = 0x78;
    expect(parseEnvBlock(bad)).toBeUndefined();
    const noPad = Buffer.from(block);
    noPad[1023] = 0x41;
    expect(parseEnvBlock(noPad)).toBeUndefined();
  });
});

describe('editing grubenv without grub-editenv', () => {
  /** A small deterministic generator, so that a failure names a case that can be run again. */
  function rng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
  }
  const NAMES = ['ORDER', 'A_OK', 'B_OK', 'A_TRY', 'B_TRY', 'MAX_TRIES', 'NEW_1', 'x', 'long_name_2'];
  const CHARS = ' !"#$%&()*+,-./0123456789:;<=>?@AZaz[]^_`{|}~';

  it('writes the very bytes grub-editenv set writes, or leaves the edit to it', async () => {
    const { dir } = await envFile();
    const theirs = join(dir, 'theirs');
    const next = rng(21);
    let edited = 0;
    let refused = 0;
    for (let c = 0; c < 60; c++) {
      // Every few cases a fresh env, so that both full and sparse blocks are edited.
      if (c % 12 === 0) await createEnv(theirs, { ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3' });
      const vars: Record<string, string> = {};
      for (let n = 1 + Math.floor(next() * 3); n > 0; n--) {
        const len = next() < 0.2 ? Math.floor(next() * 700) : Math.floor(next() * 6);
        vars[NAMES[Math.floor(next() * NAMES.length)]!] = Array.from({ length: len }, () => CHARS[Math.floor(next() * CHARS.length)]).join('');
      }
      const before = await readFile(theirs);
      const got = setEnvBlock(before, vars);
      const r = await execa('grub-editenv', [theirs, 'set', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], { reject: false });
      if (got) {
        expect(r.exitCode, `case ${c}: ${JSON.stringify(vars)}`).toBe(0);
        expect(got.toString('latin1'), `case ${c}: ${JSON.stringify(vars)}`).toBe((await readFile(theirs)).toString('latin1'));
        edited++;
      } else {
        // Only a block too small for the edit is left to grub-editenv here, and it refuses it too.
        expect(r.exitCode, `case ${c}: ${JSON.stringify(vars)}`).not.toBe(0);
        expect(await readFile(theirs)).toEqual(before);
        refused++;
      }
    }
    expect(edited).toBeGreaterThan(30);
    expect(refused).toBeGreaterThan(0);
  });

  it('leaves escaped values, names grub-editenv alone accepts and non-plain blocks to grub-editenv', async () => {
    const { path } = await envFile();
    const block = await readFile(path);
    expect(setEnvBlock(block, { A: 'a\\b' })).toBeUndefined();
    expect(setEnvBlock(block, { A: 'a\nb' })).toBeUndefined();
    expect(setEnvBlock(block, { A: 'caf\u00e9' })).toBeUndefined();
    expect(setEnvBlock(block, { 'a-b': '1' })).toBeUndefined();
    expect(setEnvBlock(block.subarray(0, 1000), { A: '1' })).toBeUndefined();
    expect(setEnvBlock(block, { A_OK: '0', B_OK: '0' })).toBeDefined();
  });

  it('runs no grub-editenv to edit a plain grubenv, and still does for any other', async () => {
    // A grub-editenv that cannot run: an edit that needs it fails.
    const { path } = await envFile();
    const boot = new GrubBootloader(path, '/nonexistent/grub-editenv');
    const before = durableCount();
    await boot.setPrimary('B', { disableOther: true });
    expect(durableCount() - before).toBe(1);
    expect(await readEnv(path)).toEqual({ ORDER: 'B A', A_OK: '0', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3' });
    expect((await stat(path)).size).toBe(1024);
    await execa('grub-editenv', [path, 'set', 'ESC=a\\b']);
    await expect(boot.setState('A', 'good')).rejects.toMatchObject({ code: 'BOOTENV_FAILED' });
    expect(await readEnv(path)).toMatchObject({ A_OK: '0', ESC: 'a\\b' });
    // A block too small for the edit: grub-editenv's own refusal, the file unchanged.
    const full = `${path}.full`;
    await createEnv(full, { ORDER: 'A B', A_OK: '1', PAD: 'p'.repeat(900) });
    await new GrubBootloader(full).setState('B', 'bad');
    const img = await readFile(full);
    expect(parseEnvBlock(img)).toMatchObject({ B_OK: '0' });
    await expect(new GrubBootloader(full).setPrimary('B', { disableOther: true })).rejects.toMatchObject({
      code: 'BOOTENV_FAILED',
      message: expect.stringContaining('environment block too small'),
    });
    expect(await readFile(full)).toEqual(img);
  });
});

describe('reading the env as ota-select.cfg does', () => {
  it('normalises ORDER and MAX_TRIES', () => {
    expect(slotOrder({ ORDER: 'B A' })).toEqual(['B', 'A']);
    expect(slotOrder({ ORDER: 'B' })).toEqual(['B', 'A']);
    expect(slotOrder({ ORDER: 'junk' })).toEqual(['A', 'B']);
    expect(slotOrder({})).toEqual(['A', 'B']);
    expect(maxTries({ MAX_TRIES: '5' })).toBe(5);
    expect(maxTries({ MAX_TRIES: '9' })).toBe(3);
    expect(maxTries({})).toBe(3);
  });

  it('treats a missing OK as bootable and a garbled counter as exhausted', () => {
    expect(slotState({}, 'A')).toEqual({ ok: true, tries: 0 });
    expect(slotState({ A_OK: '0', A_TRY: '2' }, 'A')).toEqual({ ok: false, tries: 2 });
    expect(slotState({ A_OK: 'yes' }, 'A').ok).toBe(false);
    expect(slotState({ A_TRY: 'x', MAX_TRIES: '4' }, 'A').tries).toBe(4);
  });

  it('predicts the next boot, including the reset when no slot qualifies', () => {
    expect(nextBoot({ ORDER: 'A B', A_OK: '1', B_OK: '1' })).toBe('A');
    expect(nextBoot({ ORDER: 'B A', A_OK: '1', B_OK: '1' })).toBe('B');
    expect(nextBoot({ ORDER: 'B A', B_OK: '0' })).toBe('A');
    expect(nextBoot({ ORDER: 'B A', B_TRY: '3', MAX_TRIES: '3' })).toBe('A');
    expect(nextBoot({ ORDER: 'B A', A_TRY: '3', B_TRY: '3', MAX_TRIES: '3' })).toBe('B');
    expect(nextBoot({ ORDER: 'B A', A_TRY: '3', B_TRY: '3', B_OK: '0' })).toBe('A');
  });
});

describe('booted slot from the kernel command line', () => {
  it('reads ota.slot=, the last one winning', async () => {
    expect(parseBootedSlot('BOOT_IMAGE=/vmlinuz ro ota.slot=B quiet')).toBe('B');
    expect(parseBootedSlot('ota.slot=A ota.slot=B')).toBe('B');
    expect(parseBootedSlot('ota.slot=C')).toBeUndefined();
    expect(parseBootedSlot('')).toBeUndefined();
    const { dir } = await envFile();
    await expect(readBootedSlot(join(dir, 'none'))).rejects.toMatchObject({ code: 'BOOTED_SLOT_UNKNOWN' });
  });
});
