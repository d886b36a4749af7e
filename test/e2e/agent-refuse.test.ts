// End to end: what the agent refuses. Downgrades, re-installs and bundles for another device
// are refused after the signature check and before any slot or grubenv byte is touched; a
// bundle signed by an unknown key or with an altered manifest never gets that far; a bundle
// with an altered payload is caught while streaming and its slot is never armed.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv } from '../../scripts/sim/simulator.js';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { makeKey } from '../agent/helpers/keys.js';
import { agent, bootAndDaemon, withStore } from '../agent/helpers/proc.js';
import { makeRig, releaseImage, type Rig } from '../agent/helpers/rig.js';

let rig: Rig;
beforeAll(async () => {
  rig = await makeRig();
  expect((await bootAndDaemon(rig)).code).toBe(0);
  const v2 = await imageBundle(rig.dir, rig.key, releaseImage('2.0.0', true), { version: '2.0.0' });
  expect((await agent(rig, ['install', v2.path])).code).toBe(0);
  expect((await bootAndDaemon(rig)).code).toBe(0);
  // Now: booted B with 2.0.0 committed; the inactive slot is A.
});
afterAll(async () => rig.cleanup());

/** Everything a refused install must leave exactly as it was. */
async function untouched(): Promise<() => Promise<void>> {
  const slotA = sha256Hex(await readFile(rig.dev.slots.A));
  const slotB = sha256Hex(await readFile(rig.dev.slots.B));
  const env = await readFile(rig.dev.grubenvPath);
  const txs = withStore(rig, (s) => s.transactions().length);
  return async () => {
    expect(sha256Hex(await readFile(rig.dev.slots.A))).toBe(slotA);
    expect(sha256Hex(await readFile(rig.dev.slots.B))).toBe(slotB);
    expect((await readFile(rig.dev.grubenvPath)).equals(env)).toBe(true);
    expect(withStore(rig, (s) => s.transactions().length)).toBe(txs);
  };
}

async function refused(path: string, code: string, extra: string[] = []): Promise<string> {
  const check = await untouched();
  const r = await agent(rig, ['install', path, ...extra]);
  expect(r.code, r.stderr).toBe(1);
  expect(r.rebooted).toBe(false);
  expect(r.stderr).toMatch(new RegExp(`^ota-agent install: ${code}: `));
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  await check();
  return r.stderr;
}

describe('bundles the agent refuses', { timeout: 180_000 }, () => {
  it('refuses a downgrade and a re-install before touching any slot', async () => {
    const older = await imageBundle(rig.dir, rig.key, releaseImage('1.5.0', true), { version: '1.5.0' });
    expect(await refused(older.path, 'VERSION_NOT_NEWER')).toContain('not greater than 2.0.0');
    const same = await imageBundle(rig.dir, rig.key, releaseImage('2.0.0', true), { version: '2.0.0' });
    await refused(same.path, 'VERSION_NOT_NEWER');
  });

  it('refuses a bundle for another device before touching any slot', async () => {
    const other = await imageBundle(rig.dir, rig.key, releaseImage('3.0.0', true), { version: '3.0.0', compatible: ['rpi-cm4'] });
    expect(await refused(other.path, 'INCOMPATIBLE_DEVICE')).toContain('built for rpi-cm4');
  });

  it('refuses an image larger than the slot before touching it', async () => {
    const big = await imageBundle(rig.dir, rig.key, releaseImage('3.0.1', true, 2 << 20), { version: '3.0.1' });
    await refused(big.path, 'SLOT_TOO_SMALL');
  });

  it('refuses a bundle signed by an unknown key, and one whose manifest was altered', async () => {
    const stranger = await makeKey(rig.dir, 'stranger');
    const foreign = await imageBundle(rig.dir, stranger, releaseImage('3.1.0', true), { version: '3.1.0' });
    await refused(foreign.path, 'SIGNATURE_UNKNOWN_KEY');
    const good = await imageBundle(rig.dir, rig.key, releaseImage('3.2.0', true), { version: '3.2.0' });
    const bytes = await readFile(good.path);
    const at = bytes.indexOf(Buffer.from('"3.2.0"'));
    bytes.write('"3.9.0"', at);
    const altered = join(rig.dir, 'altered-manifest.otab');
    await writeFile(altered, bytes);
    await refused(altered, 'SIGNATURE_BAD');
  });

  it('catches an altered payload while streaming: the transaction fails and the slot is never armed', async () => {
    const good = await imageBundle(rig.dir, rig.key, releaseImage('3.3.0', true), { version: '3.3.0' });
    const bytes = await readFile(good.path);
    const at = bytes.length - 1024 - 5000;
    bytes[at] = bytes[at]! ^ 0x01;
    const altered = join(rig.dir, 'altered-payload.otab');
    await writeFile(altered, bytes);
    const slotB = sha256Hex(await readFile(rig.dev.slots.B));
    const trace = join(rig.dir, 'durable.trace');
    const r = await agent(rig, ['install', altered], { OTA_DURABLE_TRACE: trace });
    expect(r.code).toBe(1);
    expect(r.rebooted).toBe(false);
    expect(r.stderr).toMatch(/PAYLOAD_HASH_MISMATCH/);
    // The only grubenv write was the disarm before the first byte: A was never armed.
    const envWrites = (await readFile(trace, 'utf8')).split('\n').filter((l) => l.includes('\tgrubenv\t'));
    expect(envWrites).toHaveLength(1);
    expect(envWrites[0]).toContain('mark A bad: A_OK=0');
    expect(await readEnv(rig.dev.grubenvPath)).toMatchObject({ ORDER: 'B A', A_OK: '0', B_OK: '1' });
    expect(sha256Hex(await readFile(rig.dev.slots.B))).toBe(slotB);
    withStore(rig, (s) => {
      const t = s.transactions(1)[0]!;
      expect(t).toMatchObject({ version: '3.3.0', state: 'failed', reason: 'install:PAYLOAD_HASH_MISMATCH' });
      expect(t.finishedAt).not.toBeNull();
      expect(s.slots().A.status).toBe('bad');
      expect(s.reports(t.id).at(-1)!.body).toMatchObject({ state: 'failed', outcome: 'failure', reason: 'install:PAYLOAD_HASH_MISMATCH' });
    });
  });

  it('installs an older version with --allow-downgrade, on purpose', async () => {
    const older = await imageBundle(rig.dir, rig.key, releaseImage('1.5.0', true), { version: '1.5.0' });
    const r = await agent(rig, ['install', older.path, '--allow-downgrade']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.rebooted).toBe(true);
    expect((await bootAndDaemon(rig)).code).toBe(0);
    withStore(rig, (s) => {
      expect(s.transactions(1)[0]).toMatchObject({ version: '1.5.0', state: 'committed', allowDowngrade: true });
      // The floor stays where it was: a later non-technician install must still beat 2.0.0.
      expect(s.highestCommitted()).toBe('2.0.0');
    });
  });
});
