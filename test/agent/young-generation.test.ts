// The agent's V8 flags (agent/infra/young-generation.ts: the young generation's cap, TurboFan
// off) hold through what was seen to drop them: a worker thread starting (the read-back) and
// reclaim.ts taking V8's gc. Run in a
// fresh node (the built dist/, as the agent runs), since this process's heap has grown already.
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const DIST = resolve(import.meta.dirname, '..', '..', 'dist', 'agent');

// Allocates objects that survive a scavenge or two, as a long install's per-chunk promises and
// slices do; V8 grows an uncapped young generation under it (to 16 MiB semi-spaces here).
const CHILD = `
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
// Parsed now: a worker's start puts the flags set at run time back to the command line's.
setFlagsFromString('--allow-natives-syntax');
const status = new Function('f', 'return %GetOptimizationStatus(f)');
function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s; }
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
const initial = newSpace();
await import(${JSON.stringify(join(DIST, 'infra', 'young-generation.js'))});
const { ReadBack } = await import(${JSON.stringify(join(DIST, 'boot', 'slots', 'readback.js'))});
const { reclaimer } = await import(${JSON.stringify(join(DIST, 'infra', 'reclaim.js'))});
const rb = new ReadBack(process.argv[2], false);
rb.upTo(1 << 20);
await new Promise((ok) => setTimeout(ok, 300));
const reclaim = process.argv[3] === 'gc' ? reclaimer(64 << 20) : () => undefined;
let keep = [];
let most = 0;
for (let i = 0; i < 2e6; i++) {
  keep.push({ i, pad: new Array(8) });
  if (keep.length > 20000) keep = keep.slice(10000);
  if (i % 10000 === 0) { most = Math.max(most, newSpace()); reclaim(1 << 20); }
}
const ones = new Array(1000).fill(1);
for (let i = 0; i < 40000; i++) hot(ones);
await new Promise((ok) => setTimeout(ok, 200));
for (let i = 0; i < 40000; i++) hot(ones);
rb.upTo(2 << 20);
const digest = await rb.digest();
// Bit 16 of V8's optimization status: the function runs TurboFan's code.
process.stdout.write(JSON.stringify({ initial, most, length: digest.length, optimized: (status(hot) & 16) !== 0 }));
`;

describe('young generation', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otaab-young-'));
    await writeFile(join(dir, 'slot.img'), Buffer.alloc(2 << 20, 7));
    // A file, not --input-type=module: the worker inherits node's options, and its code is CommonJS.
    await writeFile(join(dir, 'child.mjs'), CHILD);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const mode of ['worker', 'gc'] as const) {
    it(`stays at its initial size, and TurboFan off, through a read-back worker${mode === 'gc' ? ' and an exposed gc' : ''}`, async () => {
      const r = await execa('node', [join(dir, 'child.mjs'), join(dir, 'slot.img'), mode], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, extendEnv: false });
      const got = JSON.parse(String(r.stdout)) as { initial: number; most: number; length: number; optimized: boolean };
      expect(got.length).toBe(2 << 20);
      expect(got.optimized).toBe(false);
      // The first scavenge commits the second semi-space (1 MiB -> 2 MiB of new space at start);
      // with the cap dropped by the worker's start it grew to 32 MiB here.
      expect(got.most).toBeLessThanOrEqual(2 * got.initial);
    });
  }
});
