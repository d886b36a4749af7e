// The simulator's command line, driven in-process through main(): exit codes 0/1/2,
// help text, and a short session against a real device folder.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../scripts/sim/cli.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('ota-sim CLI', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const cmd of ['init DIR', 'boot DIR', 'crash-flag DIR', 'env DIR']) expect(r.out).toContain(cmd);
    expect((await cli('boot', '--help')).code).toBe(0);
  });

  it('usage errors exit 2 with one line on stderr', async () => {
    for (const argv of [[], ['frobnicate', '/tmp/x'], ['init'], ['crash-flag', '/tmp/x', 'C', 'on'], ['init', '/tmp/x', '--kind', 'zfs'], ['boot', '/tmp/x', '--bogus']]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      if (argv.length > 0) expect(r.err.split('\n')).toHaveLength(1);
    }
  });

  it('an operational failure exits 1 and names the folder', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'otaab-cli-'));
    dirs.push(parent);
    const dir = join(parent, 'missing');
    const r = await cli('boot', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ota-sim: boot: .*missing is not a simulated device/);
  });

  it('init, env, crash-flag and boot work together', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otaab-cli-'));
    dirs.push(dir);
    expect((await cli('init', dir, '--kind', 'fs', '--max-tries', '2')).code).toBe(0);
    const env = await cli('env', dir, 'ORDER=B A', '--json');
    expect(JSON.parse(env.out)).toMatchObject({ ORDER: 'B A', MAX_TRIES: '2' });
    expect((await cli('crash-flag', dir, 'B', 'on')).code).toBe(0);

    const once = await cli('boot', dir, '--json');
    expect(JSON.parse(once.out)).toMatchObject({ slot: 'B', crashed: true, env: { B_TRY: '1' } });

    const up = await cli('boot', dir, '--until-up', '--json');
    expect(JSON.parse(up.out)).toEqual({ slot: 'A', boots: 2, env: { ORDER: 'B A', A_OK: '1', B_OK: '1', A_TRY: '1', B_TRY: '2', MAX_TRIES: '2' } });
    expect(await readFile(join(dir, 'cmdline'), 'utf8')).toMatch(/ota\.slot=A\n$/);
  });
});
