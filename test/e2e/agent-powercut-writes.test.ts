// A power cut after every durable write of an update (store commit, slot fsync, grubenv
// rename): OTA_CRASH_AFTER_WRITE=k makes the agent SIGKILL itself right after its k-th
// durable write. A first, uncut run counts the writes of each agent process; then for every
// process and every k, a fresh device is cut there, booted through GRUB, and left to come to
// rest. Every point must end committed (or cleanly rolled back), slot A never written.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { drive, expectAtRest, type Ending } from '../agent/helpers/cut.js';
import { bootAndDaemon } from '../agent/helpers/proc.js';
import { makeRig, releaseImage, type Rig } from '../agent/helpers/rig.js';

const rigs: Rig[] = [];
afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

async function device(): Promise<{ rig: Rig; slotA: string }> {
  const rig = await makeRig();
  rigs.push(rig);
  expect((await bootAndDaemon(rig)).code).toBe(0);
  return { rig, slotA: sha256Hex(await readFile(rig.dev.slots.A)) };
}

async function bundle(rig: Rig, healthy: boolean): Promise<string> {
  return (await imageBundle(rig.dir, rig.key, releaseImage('1.0.0', healthy), { version: '1.0.0' })).path;
}

/** Durable writes of each agent process of an uncut update, with what each one was. */
async function countWrites(healthy: boolean, ending: Ending): Promise<string[][]> {
  const { rig, slotA } = await device();
  const trace = (i: number) => join(rig.dir, `trace-${i}`);
  const driven = await drive(rig, await bundle(rig, healthy), undefined, false, (i) => ({ OTA_DURABLE_TRACE: trace(i) }));
  await expectAtRest(rig, ending, slotA);
  const out: string[][] = [];
  for (let i = 0; i < driven.runs.length; i++) {
    out.push((await readFile(trace(i), 'utf8').catch(() => '')).split('\n').filter(Boolean));
  }
  return out;
}

async function everyPoint(healthy: boolean, ending: Ending): Promise<void> {
  const writes = await countWrites(healthy, ending);
  // Every kind of durable write shows up in an update.
  const kinds = new Set(writes.flat().map((l) => l.split('\t')[1]));
  expect([...kinds].sort()).toEqual(['grubenv', 'slot-sync', 'store']);
  let points = 0;
  for (const [run, lines] of writes.entries()) {
    for (let k = 1; k <= lines.length; k++) {
      const { rig, slotA } = await device();
      const driven = await drive(rig, await bundle(rig, healthy), { run, env: { OTA_CRASH_AFTER_WRITE: String(k) } }, true);
      expect(driven.cutRun, `run ${run}, write ${k} (${lines[k - 1]}): cut`).toBe(run);
      try {
        await expectAtRest(rig, ending, slotA);
      } catch (err) {
        throw new Error(`cut after run ${run}, write ${k} (${lines[k - 1]}): ${String(err)}`, { cause: err });
      }
      points++;
      await rig.cleanup();
    }
  }
  expect(points).toBe(writes.flat().length);
}

describe('a power cut after every durable write', { timeout: 180_000 }, () => {
  it('of a successful update: every point ends committed', async () => {
    await everyPoint(true, { state: 'committed' });
  }, 600_000);

  it('of an update that fails its health check: every point ends rolled back', async () => {
    await everyPoint(false, { state: 'rolled-back', reason: 'health-check:app' });
  }, 600_000);
});
