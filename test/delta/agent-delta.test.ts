// A delta install from a local bundle, with real agent processes on a simulated device: v1
// lands whole (its index kept at commit), v2 is built from v1's chunks plus the changed ones,
// reads back, boots and commits exactly like a full install.
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../shared/hashing.js';
import { agent, bootAndDaemon, json } from '../agent/helpers/proc.js';
import { makeRig, type Rig } from '../agent/helpers/rig.js';
import { deltaImage, edited, indexedBundle } from './helpers.js';

const SIZE = 6 * 1024 * 1024;
let rig: Rig;
let v1: Buffer;

beforeAll(async () => {
  rig = await makeRig({ slotSize: 8 * 1024 * 1024 });
  const first = await bootAndDaemon(rig);
  expect(first.code, first.stderr).toBe(0);
  v1 = deltaImage('1.0.0', SIZE);
});
afterAll(async () => rig.cleanup());

interface HistoryJson {
  transactions: Array<{ version: string; state: string; events: Array<{ type: string; toState: string | null; details: Record<string, unknown> | null }> }>;
}

describe('delta install from a local bundle (real processes)', { timeout: 180_000 }, () => {
  it('v1 (slot A has no chunk of it) installs whole and keeps its index at commit', async () => {
    const inst = await agent(rig, ['install', await indexedBundle(rig.dir, rig.key, '1.0.0', v1)]);
    expect(inst.code, inst.stderr).toBe(0);
    expect(inst.stderr).toContain('no chunk of the new image');
    expect(existsSync(join(rig.dir, 'data', 'delta', 'slot-A.idx'))).toBe(true);
    const d = await bootAndDaemon(rig);
    expect(d.code, d.stderr).toBe(0);
    expect(existsSync(join(rig.dir, 'data', 'delta', 'slot-B.idx'))).toBe(true);
  });

  it('v2 with two changed regions is built from slot B plus the changed chunks, reads back, boots and commits', async () => {
    const v2 = edited(v1, '2.0.0', [[1_000_000, 100_000], [4_500_000, 5000]]);
    const inst = await agent(rig, ['install', await indexedBundle(rig.dir, rig.key, '2.0.0', v2)]);
    expect(inst.code, inst.stderr).toBe(0);
    expect(inst.stderr).toMatch(/delta: \d+ of 6291456 image bytes from slot B/);
    expect(inst.stderr).toMatch(/delta written in [\d.]+ s: slot reads [\d.]+ s \(\d+\), hashing /);
    expect(sha256Hex((await readFile(rig.dev.slots.A)).subarray(0, SIZE))).toBe(sha256Hex(v2));
    const d = await bootAndDaemon(rig);
    expect(d.code, d.stderr).toBe(0);
    const history = await json<HistoryJson>(rig, 'history');
    const tx = history.transactions[0]!;
    expect(tx).toMatchObject({ version: '2.0.0', state: 'committed' });
    expect(tx.events.filter((e) => e.type === 'transition').map((e) => e.toState)).toEqual(['downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed']);
    const written = tx.events.find((e) => e.toState === 'installed')!.details!;
    expect(written.delta).toBe(true);
    expect(written.localBytes as number).toBeGreaterThan(SIZE * 0.8);
    expect(written.fetchedBytes as number).toBeLessThan(SIZE * 0.2);
    expect(written.localMisses).toBe(0);
    expect(written.phasesMs).toMatchObject({ runs: expect.any(Number), readBack: expect.any(Number) });
  });

  it('chunks the running slot no longer holds as its kept index says are fetched, in runs read whole', async () => {
    // Slot A runs v2 and keeps its index; three of its bytes change behind the agent's back.
    const v2 = edited(v1, '2.0.0', [[1_000_000, 100_000], [4_500_000, 5000]]);
    const fh = await open(rig.dev.slots.A, 'r+');
    for (const at of [300_000, 2_000_000, 5_900_000]) await fh.write(Buffer.from([v2[at]! ^ 0xff]), 0, 1, at);
    await fh.close();
    const v3 = edited(v2, '3.0.0', [[3_000_000, 20_000]]);
    const inst = await agent(rig, ['install', await indexedBundle(rig.dir, rig.key, '3.0.0', v3)]);
    expect(inst.code, inst.stderr).toBe(0);
    expect(sha256Hex((await readFile(rig.dev.slots.B)).subarray(0, SIZE))).toBe(sha256Hex(v3));
    const tx = (await json<HistoryJson>(rig, 'history')).transactions[0]!;
    const written = tx.events.find((e) => e.toState === 'installed')!.details!;
    expect(written).toMatchObject({ delta: true, localMisses: 3 });
    expect(written.localBytes as number).toBeGreaterThan(SIZE * 0.8);
  });
});
