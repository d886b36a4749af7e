/**
 * A systemd health check: passes when the unit is active (one still activating is waited
 * for). A unit that is not gets restarted
 * (`systemctl restart`) up to `restarts` times, each followed by `settleSeconds` of grace,
 * before the check fails. The systemctl program is configurable (tools.systemctl).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { SystemdCheck } from '../config/types.js';
import { excerpt } from './excerpt.js';
import type { CheckContext, CheckResult } from './types.js';

/** States `systemctl is-active` prints while a unit is on its way somewhere. */
const TRANSITIONAL = new Set(['activating', 'reloading', 'deactivating', 'refreshing']);
const POLL_MS = 500;

async function systemctl(program: string, args: string[], ctx: CheckContext): Promise<{ code: number | undefined; out: string }> {
  const r = await execa(program, args, { stdin: 'ignore', all: true, reject: false, timeout: Math.max(1, ctx.remaining()) });
  return { code: r.exitCode, out: String(r.all ?? '').trim() };
}

/**
 * When systemd is restarting `unit` after failures (sub-state auto-restart) more than `limit`
 * times, what to report; else null. A systemctl without `show` (or an older systemd without
 * NRestarts) answers nothing usable: null, and the check waits as before.
 */
async function autoRestarts(program: string, unit: string, limit: number, ctx: CheckContext): Promise<string | null> {
  const r = await systemctl(program, ['show', '-p', 'SubState', '-p', 'NRestarts', '-p', 'Result', unit], ctx);
  if (r.code !== 0) return null;
  const props = new Map(r.out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const restarts = Number(props.get('NRestarts'));
  if (props.get('SubState') !== 'auto-restart' || !Number.isInteger(restarts) || restarts <= limit) return null;
  return `${unit} keeps failing: systemd restarted it ${restarts} time(s) (result ${props.get('Result') || 'unknown'}), more than the ${limit} allowed`;
}

/** Checks (and restarts) the unit. */
export async function runSystemdCheck(check: SystemdCheck, program: string, ctx: CheckContext): Promise<Omit<CheckResult, 'seconds'>> {
  const unit = check.systemd;
  const result = (verdict: CheckResult['verdict'], text: string): Omit<CheckResult, 'seconds'> => ({ name: check.name, kind: 'systemd', verdict, excerpt: excerpt(text) });
  const seen: string[] = [];
  for (let attempt = 0; ; attempt++) {
    let state = await systemctl(program, ['is-active', unit], ctx);
    // A unit still starting at boot is not a failure yet: wait for it, within the deadline.
    // One that systemd itself keeps restarting (Restart=, sub-state auto-restart, which
    // is-active also calls "activating") has failed once per restart: past `restarts` of
    // them the check fails now, with its reason, instead of waiting out the deadline.
    let looping: string | null = null;
    while (TRANSITIONAL.has(state.out) && ctx.remaining() > POLL_MS) {
      looping = await autoRestarts(program, unit, check.restarts, ctx);
      if (looping !== null) break;
      await sleep(POLL_MS);
      state = await systemctl(program, ['is-active', unit], ctx);
    }
    if (looping !== null) {
      const status = await systemctl(program, ['status', '--no-pager', '--lines=20', unit], ctx);
      return result('fail', `${looping}\n${status.out}`);
    }
    if (state.code === 0) return result('pass', `${unit} active${attempt > 0 ? ` after ${attempt} restart(s)` : ''}`);
    seen.push(`${unit} ${state.out || 'inactive'}`);
    if (ctx.remaining() <= 0) return result('timeout', `${seen.join('; ')}; the health deadline passed`);
    if (attempt >= check.restarts) break;
    const restart = await systemctl(program, ['restart', unit], ctx);
    if (restart.code !== 0) seen.push(`restart failed: ${restart.out}`);
    await sleep(Math.min(check.settleSeconds * 1000, Math.max(0, ctx.remaining())));
  }
  const status = await systemctl(program, ['status', '--no-pager', '--lines=20', unit], ctx);
  return result('fail', `${seen.join('; ')} after ${check.restarts} restart(s)\n${status.out}`);
}
