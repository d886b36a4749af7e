/**
 * `npm run install-tools` puts ota-release, ota-server and ota-agent on the PATH (npm's global
 * bin directory, here a temporary prefix), and they run from there.
 */
import { execa } from 'execa';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

let prefix: string;
beforeAll(async () => {
  prefix = await mkdtemp(join(tmpdir(), 'otaab-prefix-'));
});
afterAll(async () => {
  await rm(prefix, { recursive: true, force: true });
});

describe('npm run install-tools', () => {
  it('links the three commands into the global bin directory, where they run', async () => {
    const r = await execa('npm', ['run', 'install-tools'], { cwd: ROOT, env: { npm_config_prefix: prefix }, reject: false, stdin: 'ignore' });
    expect(r.exitCode, `${String(r.stdout)}\n${String(r.stderr)}`).toBe(0);
    expect(String(r.stderr)).not.toMatch(/warn/i);
    expect((await readdir(join(prefix, 'bin'))).sort()).toEqual(['ota-agent', 'ota-release', 'ota-server']);
    const path = `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`;
    for (const [cmd, says] of [['ota-release', 'Build, sign, inspect and verify'], ['ota-server', 'init'], ['ota-agent', 'install']] as const) {
      const h = await execa(cmd, ['--help'], { env: { PATH: path }, reject: false, cwd: prefix });
      expect(h.exitCode, String(h.stderr)).toBe(0);
      expect(String(h.stdout)).toContain(says);
    }
  });
});
