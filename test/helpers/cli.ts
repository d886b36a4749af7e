/** Runs the compiled CLIs as real processes (tests need `npm run build` first; `npm test` does it). */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testDatabaseEnv } from '../../scripts/fleet/test-database.js';

/** Repository root. */
export const ROOT = resolve(import.meta.dirname, '..', '..');

/** Runs `ota-<name>` with `args`; never throws on a non-zero exit. */
export async function runCli(name: 'release' | 'agent' | 'server', args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string } = {}) {
  // The PostgreSQL pass: `ota-server ... --data DIR` uses the test database of DIR.
  const data = name === 'server' ? args[args.indexOf('--data') + 1] : undefined;
  const db = data !== undefined && args.includes('--data') ? testDatabaseEnv(data) : {};
  const r = await execa('node', [join(ROOT, 'dist', name, 'cli.js'), ...args], {
    reject: false,
    env: { ...db, ...(opts.env ?? {}) },
    cwd: opts.cwd ?? ROOT,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix = 'otaab-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
