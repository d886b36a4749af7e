/** The real `ota-server` as a child process (tests need `npm run build` first). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';
import { testDatabaseEnv } from '../../scripts/fleet/test-database.js';

/** A running server process. */
export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  output(): string;
  /** Sends a signal and waits for the process to end. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `ota-server start` on a free loopback port and waits for its "listening on" line. */
export async function startServer(data: string, releaseKeys: string[], extra: string[] = []): Promise<ServerProcess> {
  // `start` opens only a data directory that `init` made; init leaves an initialised one alone.
  const db = testDatabaseEnv(data);
  execFileSync(process.execPath, [join(ROOT, 'dist', 'server', 'cli.js'), 'init', '--data', data], { stdio: 'ignore', env: { ...process.env, ...db } });
  const args = [join(ROOT, 'dist', 'server', 'cli.js'), 'start', '--data', data, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn', ...releaseKeys.flatMap((k) => ['--release-key', k]), ...extra];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...db } });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ota-server did not start within 30 s:\n${out}`)), 30_000);
    const check = (): void => {
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ota-server exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    proc,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}
