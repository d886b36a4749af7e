import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { reclaimer, type Gc } from '../../agent/reclaim.js';

const MIB = 1 << 20;

describe('reclaimer', () => {
  it('collects once per `every` bytes streamed, whatever the chunk sizes', () => {
    const calls: unknown[] = [];
    const reclaim = reclaimer(MIB, ((o: unknown) => calls.push(o)) as Gc);
    reclaim(MIB - 1);
    expect(calls).toEqual([]);
    reclaim(1);
    expect(calls).toEqual([{ type: 'minor' }]);
    for (let i = 0; i < 16; i++) reclaim(64 << 10);
    expect(calls).toHaveLength(2);
    reclaim(3 * MIB);
    expect(calls).toHaveLength(3);
  });

  it("frees the chunks a stream handed on with this Node's own collector", async () => {
    const arrayBuffers = (): number => process.memoryUsage().arrayBuffers;
    // Start from a collected heap, so that garbage from before is not freed in the middle.
    reclaimer(1)(1);
    await sleep(50);
    const base = arrayBuffers();
    let chunks: Buffer[] | null = Array.from({ length: 128 }, () => Buffer.alloc(64 << 10, 1));
    expect(arrayBuffers() - base).toBeGreaterThanOrEqual(8 * MIB);
    chunks = null;
    reclaimer(MIB)(MIB);
    // V8 returns the buffers from a background thread, a moment after the collection.
    for (let i = 0; i < 100 && arrayBuffers() - base >= 4 * MIB; i++) await sleep(10);
    expect(chunks).toBeNull();
    expect(arrayBuffers() - base).toBeLessThan(4 * MIB);
  });
});
