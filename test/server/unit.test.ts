/**
 * The systemd units of the server and the agent: `systemd-analyze verify` accepts them, and the
 * section each one's comment points to exists in the docs (systemd as PID 1 does not run here).
 */
import { execa } from 'execa';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/cli.js';

const UNITS = ['server/otaab-server.service', 'agent/otaab-agent.service'];
let dir: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  dir = await tempDir('otaab-units-');
});
afterAll(async () => {
  await dir.cleanup();
});

describe.each(UNITS)('%s', (unit) => {
  it('passes systemd-analyze verify', async () => {
    const copy = join(dir.dir, unit.split('/').pop()!);
    await copyFile(join(ROOT, unit), copy);
    const r = await execa('systemd-analyze', ['verify', copy], { reject: false, stdin: 'ignore' });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).not.toContain(copy);
  });

  it('points to a section the docs have', async () => {
    const text = await readFile(join(ROOT, unit), 'utf8');
    const m = /see (docs\/[A-Z]+\.md) \("([^"]+)"/.exec(text);
    expect(m, 'the first line names a docs file and a section').not.toBeNull();
    const doc = await readFile(join(ROOT, m![1]!), 'utf8');
    expect(doc.split('\n').filter((l) => /^#+ /.test(l)).map((l) => l.replace(/^#+ /, ''))).toContain(m![2]);
  });
});
