// The decision table of grub/ota-select.cfg (DESIGN §5, grub/README.md), run under real
// grub-emu: each row starts from a grubenv, lets GRUB pick a slot, and checks the slot
// and the whole grubenv GRUB saved on the image.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSelection, type RunSelectionOptions } from '../../scripts/sim/grub-emu.js';
import { DEFAULT_ENV, createEnv, readEnv } from '../../scripts/sim/grubenv.js';
import { grubSourceDir } from '../../scripts/sim/paths.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

type Env = Record<string, string>;

/** A boot directory holding the project's script and `env` (a var map, raw bytes, or nothing). */
async function bootDir(env: Env | Buffer | null): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-grub-test-'));
  dirs.push(dir);
  await mkdir(join(dir, 'grub'));
  await copyFile(join(grubSourceDir(), 'ota-select.cfg'), join(dir, 'grub', 'ota-select.cfg'));
  if (Buffer.isBuffer(env)) await writeFile(join(dir, 'grub', 'grubenv'), env);
  else if (env) await createEnv(join(dir, 'grub', 'grubenv'), env);
  return dir;
}

/** Runs one boot's selection and returns the decision plus the env GRUB left on the image. */
async function select(env: Env | Buffer | null, opts?: RunSelectionOptions) {
  const dir = await bootDir(env);
  const run = await runSelection(dir, opts);
  let after: Env | null = null;
  if (run.grubenv && run.selection.saved) {
    const out = join(dir, 'grubenv.after');
    await writeFile(out, run.grubenv);
    after = await readEnv(out);
  }
  return { ...run.selection, output: run.output, after, raw: run.grubenv };
}

const env = (over: Env = {}): Env => ({ ...DEFAULT_ENV, ...over });

interface Row {
  name: string;
  env: Env;
  slot: 'A' | 'B';
  attempt: number;
  reset?: boolean;
  /** Variables GRUB must have changed; every other variable must be saved unchanged. */
  changes: Env;
}

// The table first, then what a field device meets when the env is not what the
// agent meant to write.
const rows: Row[] = [
  { name: 'default env boots A', env: env(), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'ORDER="B A" boots B', env: env({ ORDER: 'B A' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },
  { name: 'B not OK boots A', env: env({ ORDER: 'B A', B_OK: '0' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'B on its last try boots B', env: env({ ORDER: 'B A', B_TRY: '2' }), slot: 'B', attempt: 3, changes: { B_TRY: '3' } },
  { name: 'B exhausted boots A', env: env({ ORDER: 'B A', B_TRY: '3' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'A exhausted boots B', env: env({ A_TRY: '3', B_TRY: '1' }), slot: 'B', attempt: 2, changes: { B_TRY: '2' } },
  {
    name: 'both exhausted: counters reset, first in ORDER (A B)',
    env: env({ A_TRY: '3', B_TRY: '3' }), slot: 'A', attempt: 1, reset: true, changes: { A_TRY: '1', B_TRY: '0' },
  },
  {
    name: 'both exhausted: counters reset, first in ORDER (B A)',
    env: env({ ORDER: 'B A', A_TRY: '3', B_TRY: '3' }), slot: 'B', attempt: 1, reset: true, changes: { A_TRY: '0', B_TRY: '1' },
  },
  {
    name: 'nothing qualifies: the reset prefers an OK slot over a disarmed first in ORDER',
    env: env({ ORDER: 'B A', B_OK: '0', A_TRY: '3' }), slot: 'A', attempt: 1, reset: true, changes: { A_TRY: '1', B_TRY: '0' },
  },
  {
    name: 'neither slot OK: counters reset, first in ORDER anyway (never brick)',
    env: env({ ORDER: 'B A', A_OK: '0', B_OK: '0', A_TRY: '1', B_TRY: '2' }), slot: 'B', attempt: 1, reset: true, changes: { A_TRY: '0', B_TRY: '1' },
  },
  { name: 'MAX_TRIES=1: an unused slot boots', env: env({ MAX_TRIES: '1' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'MAX_TRIES=1: one try exhausts a slot', env: env({ MAX_TRIES: '1', A_TRY: '1' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },
  { name: 'MAX_TRIES=5: the fifth try is allowed', env: env({ MAX_TRIES: '5', A_TRY: '4' }), slot: 'A', attempt: 5, changes: { A_TRY: '5' } },
  { name: 'MAX_TRIES=5: five tries exhaust a slot', env: env({ MAX_TRIES: '5', A_TRY: '5' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },

  // ORDER: unknown names are skipped, missing slots are appended, garbage means "A B".
  { name: 'ORDER empty means "A B"', env: env({ ORDER: '' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'ORDER of unknown names means "A B"', env: env({ ORDER: 'C rootfs.1' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'ORDER names are case-sensitive ("b a" is garbage)', env: env({ ORDER: 'b a' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'ORDER "B,A" is one unknown word', env: env({ ORDER: 'B,A' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'ORDER skips an unknown name before B', env: env({ ORDER: 'C B A' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },
  { name: 'ORDER "B" alone prefers B', env: env({ ORDER: 'B' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },
  { name: 'a slot left out of ORDER is still the fallback', env: env({ ORDER: 'B', B_TRY: '3' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },
  { name: 'a repeated name counts once', env: env({ ORDER: 'B B', B_OK: '0' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },

  // MAX_TRIES outside 1..5 or not a plain digit means 3.
  ...['abc', '', '0', '6', '10', '03', '-1', '3 '].flatMap((max): Row[] => [
    { name: `MAX_TRIES=${JSON.stringify(max)} counts as 3: third try allowed`, env: env({ MAX_TRIES: max, A_TRY: '2' }), slot: 'A', attempt: 3, changes: { A_TRY: '3' } },
    { name: `MAX_TRIES=${JSON.stringify(max)} counts as 3: three tries exhaust`, env: env({ MAX_TRIES: max, A_TRY: '3' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },
  ]),

  // X_OK: exactly "1" (or missing/empty: never disarmed) is bootable; anything else is not.
  ...['0', 'yes', 'true', ' 1', '2'].map((ok): Row => ({
    name: `A_OK=${JSON.stringify(ok)} is not bootable`, env: env({ A_OK: ok }), slot: 'B', attempt: 1, changes: { B_TRY: '1' },
  })),
  { name: 'A_OK empty counts as missing: bootable', env: env({ A_OK: '' }), slot: 'A', attempt: 1, changes: { A_TRY: '1' } },

  // X_TRY: a counter GRUB cannot read means the slot is exhausted.
  ...['x', '-1', '9', '1.5', '00', ' 0'].map((tries): Row => ({
    name: `B_TRY=${JSON.stringify(tries)} counts as exhausted`, env: env({ ORDER: 'B A', B_TRY: tries }), slot: 'A', attempt: 1, changes: { A_TRY: '1' },
  })),
  { name: 'B_TRY empty counts as missing: never tried', env: env({ ORDER: 'B A', B_TRY: '' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },
  {
    name: 'a garbled counter is repaired by the reset',
    env: env({ A_TRY: 'x', B_TRY: '3' }), slot: 'A', attempt: 1, reset: true, changes: { A_TRY: '1', B_TRY: '0' },
  },
  {
    name: 'everything garbled: reset, boot A',
    env: { ORDER: '??', A_OK: 'x', B_OK: 'x', A_TRY: 'q', B_TRY: 'q', MAX_TRIES: 'z' }, slot: 'A', attempt: 1, reset: true, changes: { A_TRY: '1', B_TRY: '0' },
  },
  { name: 'variables GRUB does not use are kept', env: env({ custom_note: 'keep me', ORDER: 'B A' }), slot: 'B', attempt: 1, changes: { B_TRY: '1' } },
];

describe.concurrent('ota-select.cfg decision table under grub-emu', () => {
  it.each(rows)('$name', async (row) => {
    const r = await select(row.env);
    expect({ slot: r.slot, attempt: r.attempt, reset: r.reset, saved: r.saved }).toEqual({
      slot: row.slot, attempt: row.attempt, reset: row.reset ?? false, saved: true,
    });
    expect(r.after).toEqual({ ...row.env, ...row.changes });
    expect(r.output).toContain(`ota: slot ${row.slot}, attempt ${row.attempt} of`);
  });

  // Every (MAX_TRIES, A_TRY) pair: A qualifies exactly while A_TRY < MAX_TRIES.
  const pairs = [1, 2, 3, 4, 5].flatMap((max) => [0, 1, 2, 3, 4, 5].map((tries) => ({ max, tries })));
  it.each(pairs)('MAX_TRIES=$max, A_TRY=$tries', async ({ max, tries }) => {
    const before = env({ MAX_TRIES: String(max), A_TRY: String(tries) });
    const r = await select(before);
    if (tries < max) {
      expect([r.slot, r.attempt]).toEqual(['A', tries + 1]);
      expect(r.after).toEqual({ ...before, A_TRY: String(tries + 1) });
    } else {
      expect([r.slot, r.attempt]).toEqual(['B', 1]);
      expect(r.after).toEqual({ ...before, B_TRY: '1' });
    }
    expect(r.output).toContain(`of ${max}`);
  });
});

describe.concurrent('ota-select.cfg with a missing or broken env', () => {
  it('an env without the variables boots A and adds its counter', async () => {
    const r = await select({});
    expect([r.slot, r.attempt, r.reset, r.saved]).toEqual(['A', 1, false, true]);
    expect(r.after).toEqual({ A_TRY: '1' });
  });

  it('missing variables take the defaults of a fresh device', async () => {
    const r = await select({ ORDER: 'B A', B_TRY: '2' });
    expect([r.slot, r.attempt]).toEqual(['B', 3]);
    expect(r.after).toEqual({ ORDER: 'B A', B_TRY: '3' });
  });

  it('no grubenv file: boots A anyway, reports the failed save, creates nothing', async () => {
    const r = await select(null);
    expect([r.slot, r.attempt, r.saved]).toEqual(['A', 1, false]);
    expect(r.raw).toBeNull();
    expect(r.output).toContain('could not save A_TRY');
  });

  it('a corrupt grubenv: boots A anyway and leaves the file as it was', async () => {
    const junk = randomBytes(1024);
    const r = await select(junk);
    expect([r.slot, r.attempt, r.saved]).toEqual(['A', 1, false]);
    expect(r.raw?.equals(junk)).toBe(true);
  });

  it('variables set in GRUB before the script do not stand in for missing ones', async () => {
    const r = await select({ A_TRY: '0' }, { preamble: 'set ORDER="B A"\nset MAX_TRIES=1\nset A_OK=0' });
    expect([r.slot, r.attempt]).toEqual(['A', 1]);
    expect(r.after).toEqual({ A_TRY: '1' });
  });

  it('the env file keeps its 1024-byte block after a save', async () => {
    const r = await select(env());
    expect(r.raw?.length).toBe(1024);
    expect(r.raw?.subarray(0, 24).toString('latin1')).toBe('# GRUB Environment Block');
  });
});

it('the script the tests run is the one grub.cfg sources', async () => {
  const cfg = await readFile(join(grubSourceDir(), 'grub.cfg'), 'utf8');
  expect(cfg).toMatch(/^\s*source "\$\{prefix\}\/ota-select\.cfg"/m);
});
