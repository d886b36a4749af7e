/**
 * The system-tools check (scripts/setup/system-tools.sh and its table): the demo run on a PATH
 * that hides the tools, with OTAAB_NO_APT=1, stops before any work with one message naming every
 * missing tool, its package and the one install command; nothing is left in the temp directory.
 */
import { execa } from 'execa';
import { mkdtemp, mkdir, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOL_PACKAGES } from '../../scripts/sim/tools.js';
import { ROOT } from '../helpers/cli.js';

const SCRIPT = join(ROOT, 'scripts', 'setup', 'system-tools.sh');
const TABLE = join(ROOT, 'scripts', 'setup', 'system-tools.txt');
const PARTS = ['build', 'demo', 'tests', 'boot', 'bench', 'reliability', 'package', 'postgres', 'device'];

interface Row { parts: string[]; tool: string; pkg: string }

async function table(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const line of (await readFile(TABLE, 'utf8')).split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [parts, tool, pkg, ...why] = line.trim().split(/\s+/);
    expect(why.length, `row without a reason: ${line}`).toBeGreaterThan(0);
    rows.push({ parts: parts!.split(','), tool: tool!, pkg: pkg! });
  }
  return rows;
}

let work: string;
let bin: string;
let tmp: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'otaab-setup-test-'));
  // A PATH with only what npm and the check need to start: node, npm, sh and bash.
  bin = join(work, 'bin');
  tmp = join(work, 'tmp');
  await mkdir(bin);
  await mkdir(tmp);
  await symlink(process.execPath, join(bin, 'node'));
  await symlink('/usr/bin/npm', join(bin, 'npm'));
  await symlink('/bin/sh', join(bin, 'sh'));
  await symlink('/bin/bash', join(bin, 'bash'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the system-tools table', () => {
  it('names known parts, and the package of every tool the simulator and qemu test look up', async () => {
    const rows = await table();
    for (const r of rows) for (const p of r.parts) expect(PARTS).toContain(p);
    for (const [name, pkg] of Object.entries(TOOL_PACKAGES)) {
      const row = rows.find((r) => r.tool === name);
      expect(row, `${name} is missing from system-tools.txt`).toBeDefined();
      expect(row!.pkg).toBe(pkg);
    }
  });

  it('finds every tool of the tests on this machine (exit 0, silent)', async () => {
    // `npm test` checked (or installed) them before this suite ran; the demo's are a subset.
    const r = await execa('bash', [SCRIPT, 'tests', 'demo'], { reject: false, env: { OTAAB_NO_APT: '1' } });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('refuses an unknown part with exit 2', async () => {
    const r = await execa('bash', [SCRIPT, 'nope'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown part 'nope'");
  });
});

describe('the check as a user who may not install', () => {
  it.skipIf(process.getuid?.() !== 0)('names the tools and the sudo command, installs nothing, exits 1', async () => {
    // runuser drops root for one command; the bare PATH hides the tools (bash stays reachable).
    const r = await execa('runuser', ['-u', 'nobody', '--', '/usr/bin/env', '-i', `PATH=${bin}`, '/bin/bash', SCRIPT, 'demo'], { reject: false, stdin: 'ignore' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^otaab setup: npm run demo needs \d+ system tool\(s\) that are missing \(not running as root\):$/m);
    expect(r.stderr).toMatch(/^ {2}sudo apt-get install -y --no-install-recommends .*grub-common/m);
  });
});

describe('the demo on a machine without its tools', () => {
  const env = (): Record<string, string> => ({ PATH: bin, OTAAB_NO_APT: '1', TMPDIR: tmp, HOME: work });

  /** The tools of the demo that the bare PATH hides (those in /usr/sbin stay visible, as on Debian). */
  async function hidden(): Promise<Row[]> {
    const rows = (await table()).filter((r) => r.parts.includes('demo'));
    // A tool named by its path (a file a package installs) is found wherever PATH points.
    const test = (t: string): string => (t.startsWith('/') ? `compgen -G '${t}' >/dev/null` : `[ -x /usr/sbin/${t} ] || [ -x /sbin/${t} ]`);
    const visible = await Promise.all(rows.map((r) => execa('bash', ['-c', test(r.tool)], { reject: false })));
    return rows.filter((_, i) => visible[i]!.exitCode !== 0);
  }

  function expectMessage(stderr: string, rows: Row[]): void {
    expect(stderr).toContain('otaab setup: npm run demo needs');
    expect(stderr).toContain('(OTAAB_NO_APT=1 is set)');
    for (const r of rows) expect(stderr).toMatch(new RegExp(`^  ${r.tool.replace(/[.+]/g, '\\$&')} +from the Debian package ${r.pkg}$`, 'm'));
    const pkgs = [...new Set(rows.map((r) => r.pkg))];
    expect(stderr).toContain(`Install them with:\n  apt-get install -y --no-install-recommends ${pkgs.join(' ')}`);
    expect(stderr).not.toMatch(/^\s+at /m);
  }

  it('node dist/scripts/demo.js: one message, exit 1, nothing in the temp directory', async () => {
    const rows = await hidden();
    expect(rows.map((r) => r.tool)).toContain('grub-editenv');
    const r = await execa(process.execPath, [join(ROOT, 'dist', 'scripts', 'demo.js')], { reject: false, env: env(), extendEnv: false, cwd: work });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expectMessage(String(r.stderr), rows);
    expect(String(r.stderr).match(/otaab setup:/g)).toHaveLength(1);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('npm run demo stops at the check, before building anything', async () => {
    const rows = await hidden();
    const r = await execa(join(bin, 'npm'), ['run', '--silent', 'demo'], { reject: false, env: env(), extendEnv: false, cwd: ROOT });
    expect(r.exitCode).toBe(1);
    expectMessage(String(r.stderr), rows);
    expect(String(r.stdout)).not.toContain('tsc');
    expect(await readdir(tmp)).toEqual([]);
  });
});
