/**
 * `ota-release` on bad paths: each failure is one line with its code and exit 1 (never a raw
 * ENOENT, never exit 2 for an operational refusal), and a failed build leaves nothing behind.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';

let dir: { dir: string; cleanup: () => Promise<void> };
const run = (args: string[]) => runCli('release', args, { cwd: dir.dir });

beforeAll(async () => {
  dir = await tempDir('otaab-release-errors-');
  expect((await run(['keygen', '--out', 'rel'])).code).toBe(0);
  await mkdir(join(dir.dir, 'tree'));
  await writeFile(join(dir.dir, 'tree', 'a'), 'a\n');
});
afterAll(async () => {
  await dir.cleanup();
});

const build = ['build', '--key', 'rel.key', '--product', 'p', '--version', '1.0.0', '--compatible', 'x'];

describe.each([
  ['verify a missing bundle', ['verify', 'nope.otab', '--keyring', 'rel.pub'], 'verify: BUNDLE_UNREADABLE: bundle nope.otab: cannot be read (no such file)'],
  ['inspect a missing bundle', ['inspect', 'nope.otab'], 'inspect: BUNDLE_UNREADABLE: bundle nope.otab: cannot be read (no such file)'],
  ['verify a directory', ['verify', 'tree', '--keyring', 'rel.pub'], 'verify: BUNDLE_UNREADABLE: bundle tree: cannot be read (not a regular file)'],
  ['build into a missing directory', [...build, '--archive', 'rootfs=tree', '-o', '/nonexistent/dir/x.otab'], 'build: OUTPUT_UNWRITABLE: output /nonexistent/dir/x.otab: cannot be written (directory /nonexistent/dir does not exist)'],
  ['build from a missing image', [...build, '--image', 'rootfs=missing.img', '-o', 'x.otab'], 'build: PAYLOAD_SOURCE_UNREADABLE: payload rootfs: missing.img cannot be read (no such file or directory)'],
  ['keygen over an existing key', ['keygen', '--out', 'rel'], 'keygen: KEY_EXISTS: rel.key already exists; choose another --out or remove it'],
])('%s', (_what, args, line) => {
  it('prints one coded line and exits 1', async () => {
    const before = await readdir(dir.dir);
    const key = await readFile(join(dir.dir, 'rel.key'));
    const r = await run(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ota-release ${line}`);
    expect(r.stdout).toBe('');
    expect((await readdir(dir.dir)).sort()).toEqual(before.sort());
    expect((await readFile(join(dir.dir, 'rel.key'))).equals(key)).toBe(true);
  });
});
