import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runningSlotIndex } from '../../agent/delta/slot-index.js';
import type { SlotConfig } from '../../agent/config/types.js';
import { DEFAULT_CHUNKING } from '../../shared/chunker.js';
import { tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => Promise<void>;
let slot: SlotConfig;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeFile(join(dir, 'slot-a'), randomBytes(3 << 20));
  slot = { name: 'A', kind: 'raw', path: join(dir, 'slot-a') };
});
afterAll(() => cleanup());

describe('the running slot\'s kept chunk index', () => {
  it('is cut with the new bundle\'s chunk sizes: an index of other sizes is redone once and kept', async () => {
    const lines: string[] = [];
    const log = (l: string): void => void lines.push(l);
    const old = { min: 16 << 10, avg: 64 << 10, max: 256 << 10 };
    const first = await runningSlotIndex(dir, slot, log, old);
    expect(first!.params).toEqual(old);
    expect(lines.splice(0)).toEqual([expect.stringMatching(/had no kept chunk index/)]);
    // Kept: the same sizes are served from the kept file without a read of the slot.
    expect((await runningSlotIndex(dir, slot, log, old))!.chunks.length).toBe(first!.chunks.length);
    expect(lines).toEqual([]);
    // A bundle built with the new default sizes: its chunks could match none of the kept ones.
    const now = await runningSlotIndex(dir, slot, log, DEFAULT_CHUNKING);
    expect(now!.params).toEqual(DEFAULT_CHUNKING);
    expect(now!.chunks.length).toBeGreaterThan(first!.chunks.length);
    expect(lines.splice(0)).toEqual([expect.stringMatching(/kept a chunk index of 64 KiB chunks, the bundle uses 32 KiB/)]);
    await runningSlotIndex(dir, slot, log, DEFAULT_CHUNKING);
    expect(lines).toEqual([]);
  });
});
