/** A command health check: passes when the command exits 0 within its timeout. */
import { execa } from 'execa';
import type { CommandCheck } from '../config/types.js';
import { excerpt } from './excerpt.js';
import type { CheckContext, CheckResult } from './types.js';

/** Runs the command once, bounded by its own timeout and the overall deadline. */
export async function runCommandCheck(check: CommandCheck, ctx: CheckContext): Promise<Omit<CheckResult, 'seconds'>> {
  const own = check.timeoutSeconds * 1000;
  const limit = Math.min(own, ctx.remaining());
  if (limit <= 0) return { name: check.name, kind: 'command', verdict: 'timeout', excerpt: 'not run: the health deadline had passed' };
  const r = await execa(check.command[0]!, check.command.slice(1), {
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: limit,
    forceKillAfterDelay: 2000,
  });
  const out = excerpt(r.all as string | undefined);
  if (r.timedOut) {
    // Its own timeout is the check failing; the overall deadline cutting it short is a timeout.
    const verdict = limit < own ? 'timeout' : 'fail';
    return { name: check.name, kind: 'command', verdict, excerpt: `killed after ${Math.round(limit / 1000)} s${out ? `: ${out}` : ''}` };
  }
  if (r.exitCode === 0) return { name: check.name, kind: 'command', verdict: 'pass', excerpt: out };
  const how = r.exitCode !== undefined ? `exit status ${r.exitCode}` : `signal ${r.signal ?? '?'}`;
  const failed = r.failed && r.exitCode === undefined && !r.signal ? ` (${r.shortMessage})` : '';
  return { name: check.name, kind: 'command', verdict: 'fail', excerpt: `${how}${failed}${out ? `: ${out}` : ''}` };
}
