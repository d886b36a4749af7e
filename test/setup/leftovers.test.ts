/** Suites clean up after themselves: run in a temp directory of their own, they leave it empty. */
import { execa } from 'execa';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

describe.each(['test/server/config.test.ts'])('%s', (suite) => {
  it('leaves nothing in the temp directory', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'otaab-leftovers-'));
    try {
      const r = await execa(join(ROOT, 'node_modules', '.bin', 'vitest'), ['run', suite], { cwd: ROOT, env: { TMPDIR: tmp }, reject: false, stdin: 'ignore' });
      expect(r.exitCode, String(r.stdout)).toBe(0);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
