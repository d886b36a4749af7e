// The power-cut hook: one counter for every durable write, a trace for harnesses, and a real
// SIGKILL at the k-th write or right after a named state (checked in a child process).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durableCount, durably } from '../../agent/infra/durable.js';
import { ROOT } from '../helpers/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-durable-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** A child that makes five durable writes and passes state "armed" after the third. */
async function child(env: Record<string, string>) {
  const script = join(dir, 'child.mjs');
  await writeFile(
    script,
    `import { durably, stateReached } from ${JSON.stringify(join(ROOT, 'dist/agent/infra/durable.js'))};
for (let k = 1; k <= 5; k++) {
  durably('store', 'write ' + k, () => process.stdout.write('did ' + k + '\\n'));
  if (k === 3) stateReached('armed');
}
process.stdout.write('end\\n');`,
  );
  return execa('node', [script], { reject: false, env, stdin: 'ignore' });
}

describe('durable write hook', () => {
  it('counts writes and traces them when asked', async () => {
    const before = durableCount();
    expect(durably('grubenv', 'x', () => 7)).toBe(7);
    expect(durableCount()).toBe(before + 1);
    const trace = join(dir, 'trace');
    const r = await child({ OTA_DURABLE_TRACE: trace });
    expect(r.stdout).toContain('end');
    expect((await readFile(trace, 'utf8')).trim().split('\n')).toEqual(['1\tstore\twrite 1', '2\tstore\twrite 2', '3\tstore\twrite 3', '4\tstore\twrite 4', '5\tstore\twrite 5']);
  });

  it('SIGKILLs the process right after the k-th durable write', async () => {
    const r = await child({ OTA_CRASH_AFTER_WRITE: '2' });
    expect(r.signal).toBe('SIGKILL');
    expect(String(r.stdout).trim().split('\n')).toEqual(['did 1', 'did 2']);
  });

  it('SIGKILLs the process right after a named state was persisted', async () => {
    const r = await child({ OTA_CRASH_AT_STATE: 'armed' });
    expect(r.signal).toBe('SIGKILL');
    expect(String(r.stdout).trim().split('\n')).toEqual(['did 1', 'did 2', 'did 3']);
    expect((await child({ OTA_CRASH_AT_STATE: 'verifying' })).stdout).toContain('end');
  });
});
