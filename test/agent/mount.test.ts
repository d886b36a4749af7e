// Slot mount/unmount commands: run around the work, unmounted even when the work fails.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withMounted } from '../../agent/boot/slots/mount.js';
import type { SlotConfig } from '../../agent/config/types.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-mount-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const slot = (name: 'A' | 'B', log: string, mountOk = true): SlotConfig => ({
  name,
  kind: 'fs',
  path: `/mnt/${name}`,
  mount: ['sh', '-c', `echo mount ${name} >> ${log}; ${mountOk ? 'true' : 'echo no device >&2; false'}`],
  unmount: ['sh', '-c', `echo unmount ${name} >> ${log}`],
});

describe('withMounted', () => {
  it('mounts in order and unmounts in reverse', async () => {
    const log = join(dir, 'ok.log');
    expect(await withMounted([slot('B', log), slot('A', log)], async () => 42)).toBe(42);
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual(['mount B', 'mount A', 'unmount A', 'unmount B']);
  });

  it('unmounts what it mounted when the work fails, and keeps the work\'s error', async () => {
    const log = join(dir, 'fail.log');
    const boom = new Error('boom');
    await expect(withMounted([slot('B', log)], async () => Promise.reject(boom))).rejects.toBe(boom);
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual(['mount B', 'unmount B']);
  });

  it('reports a failing mount as transient SLOT_MOUNT_FAILED with its stderr', async () => {
    const log = join(dir, 'mountfail.log');
    await expect(withMounted([slot('A', log), slot('B', log, false)], async () => 1)).rejects.toMatchObject({
      code: 'SLOT_MOUNT_FAILED',
      kind: 'transient',
      message: expect.stringContaining('no device'),
    });
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual(['mount A', 'mount B', 'unmount A']);
  });
});
