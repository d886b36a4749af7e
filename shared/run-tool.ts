/**
 * Runs a helper program (grub-editenv, mount, sync, a reboot command) and collects its output:
 * what the agent's install path asks of a child process, with node:child_process alone.
 * execa, which the rest of the project uses, loads about a hundred modules; the agent's start
 * before the first payload byte is measured in milliseconds (docs/PERFORMANCE.md), and
 * node:child_process itself is loaded only when a first tool runs.
 */
import type * as ChildProcess from 'node:child_process';
import { lazyBuiltin } from './lazy-builtin.js';

const childProcess = lazyBuiltin<typeof ChildProcess>('node:child_process');

/** A failed run: the message names the command and its exit (or signal), stderr attached. */
export class ToolError extends Error {
  override readonly name = 'ToolError';
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
    readonly exitCode: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Output of a run that exited 0, final newline removed (as execa does). */
export interface ToolResult {
  stdout: string;
  stderr: string;
}

const chomp = (s: string): string => s.replace(/\r?\n$/, '');

/** Runs `cmd args` with stdin closed; rejects with a ToolError unless it exits 0 within `timeoutMs`. */
export function runTool(cmd: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = childProcess().execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 0, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (!err) {
        resolve({ stdout: chomp(stdout), stderr: chomp(stderr) });
        return;
      }
      const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: string | null };
      const line = [cmd, ...args].join(' ');
      const how =
        typeof e.code === 'number'
          ? `exit code ${e.code}`
          : e.killed && opts.timeoutMs
            ? `a timeout of ${opts.timeoutMs} ms`
            : e.signal
              ? `signal ${e.signal}`
              : String(e.code ?? e.message);
      const err2 = chomp(stderr);
      reject(new ToolError(`Command failed with ${how}: ${line}${err2 ? `\n\n${err2}` : ''}`, chomp(stdout), err2, typeof e.code === 'number' ? e.code : undefined, { cause: err }));
    });
    child.stdin?.end();
  });
}
