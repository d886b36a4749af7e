/**
 * `npm ci` on Node 20 prints no engine warning: every locked package admits this Node. fastify's
 * inject helper light-my-request 6.8 pulled cookie 2, which requires Node 22; package.json
 * overrides it to 6.6.0 (cookie 1, Node >= 18), and fastify's own tests of inject still pass.
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

describe('npm ci on Node 20', () => {
  it('resolves the lockfile without an engine warning (npm ci --dry-run)', async () => {
    expect(process.versions.node.split('.')[0]).toBe('20');
    const dir = await mkdtemp(join(tmpdir(), 'otaab-engines-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) await copyFile(join(ROOT, f), join(dir, f));
      const r = await execa('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, reject: false, stdin: 'ignore', all: true });
      expect(r.exitCode, String(r.all)).toBe(0);
      expect(String(r.all)).not.toContain('EBADENGINE');
      expect(String(r.all)).not.toMatch(/npm warn/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('locks light-my-request at the override and cookie 1', async () => {
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string; engines?: { node?: string } }> };
    const find = (name: string) => Object.entries(lock.packages).filter(([k]) => k.endsWith(`node_modules/${name}`)).map(([, v]) => v.version);
    expect(find('light-my-request')).toEqual(['6.6.0']);
    for (const v of find('cookie')) expect(v).toMatch(/^1\./);
  });
});
