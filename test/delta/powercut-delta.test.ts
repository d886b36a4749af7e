// A power cut after every durable write of a delta install (store commits, slot fsyncs):
// OTA_CRASH_AFTER_WRITE=k SIGKILLs `ota-agent install` right after its k-th durable write, the
// device boots through GRUB and the daemon takes it to rest. Every point must end committed
// with the new image in the new slot: a resumed delta continues from its last checkpoint. One
// device goes through the releases v2, v3, ... each a delta of the one before, one cut each.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootedSlot } from '../../scripts/sim/simulator.js';
import { sha256Hex } from '../../shared/hashing.js';
import { drive } from '../agent/helpers/cut.js';
import { bootAndDaemon, withStore } from '../agent/helpers/proc.js';
import { makeRig, type Rig } from '../agent/helpers/rig.js';
import { deltaImage, edited, indexedBundle } from './helpers.js';

const SIZE = 3 * 1024 * 1024;
let rig: Rig;
let current: Buffer;
let n = 1;

beforeAll(async () => {
  rig = await makeRig({ slotSize: 4 * 1024 * 1024, config: { checkpointBytes: 512 * 1024 } });
  expect((await bootAndDaemon(rig)).code).toBe(0);
  current = deltaImage('1.0.0', SIZE);
  const first = await drive(rig, await indexedBundle(rig.dir, rig.key, '1.0.0', current), undefined, false);
  expect(first.cutRun).toBeUndefined();
}, 120_000);
afterAll(async () => rig?.cleanup());

/** The next release: the current image with two regions changed. */
async function next(): Promise<{ version: string; image: Buffer; bundle: string }> {
  n++;
  const version = `${n}.0.0`;
  const image = edited(current, version, [[(n * 397_000) % (SIZE - 300_000), 150_000], [SIZE - 200_000, 20_000]], n * 1000);
  return { version, image, bundle: await indexedBundle(rig.dir, rig.key, version, image) };
}

async function expectCommitted(version: string, image: Buffer, what: string): Promise<void> {
  const tx = withStore(rig, (s) => {
    expect(s.current(), what).toBeUndefined();
    return s.transactions(1)[0]!;
  });
  expect(tx, what).toMatchObject({ version, state: 'committed' });
  const slot = (await bootedSlot(rig.dev)) ?? 'A';
  expect(sha256Hex((await readFile(rig.dev.slots[slot])).subarray(0, SIZE)), what).toBe(sha256Hex(image));
}

describe('power cuts during a delta install (real processes, real GRUB)', { timeout: 1_200_000 }, () => {
  it('ends committed with the right image after a cut at every durable write of the install', async () => {
    const counted = await next();
    const trace = join(rig.dir, 'trace');
    const uncut = await drive(rig, counted.bundle, undefined, false, (i): Record<string, string> => (i === 0 ? { OTA_DURABLE_TRACE: trace } : {}));
    expect(uncut.cutRun).toBeUndefined();
    await expectCommitted(counted.version, counted.image, 'uncut');
    current = counted.image;
    const writes = (await readFile(trace, 'utf8')).split('\n').filter(Boolean);
    expect(writes.filter((l) => l.includes('slot-sync')).length).toBeGreaterThanOrEqual(3);
    for (let k = 1; k <= writes.length; k++) {
      const r = await next();
      const what = `cut after write ${k} (${writes[k - 1]})`;
      const driven = await drive(rig, r.bundle, { run: 0, env: { OTA_CRASH_AFTER_WRITE: String(k) } }, true);
      expect(driven.cutRun, what).toBe(0);
      await expectCommitted(r.version, r.image, what);
      current = r.image;
    }
    process.stdout.write(`delta power cuts: ${writes.length} points, all committed\n`);
  });
});
