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

/** Checks (and restarts) the unit. */
export async function runSystemdCheck(check: SystemdCheck, program: string, ctx: CheckContext): Promise<Omit<CheckResult, 'seconds'>> {
  const unit = check.systemd;
  const result = (verdict: CheckResult['verdict'], text: string): Omit<CheckResult, 'seconds'> => ({ name: check.name, kind: 'systemd', verdict, excerpt: excerpt(text) });
  const seen: string[] = [];
  for (let attempt = 0; ; attempt++) {
    let state = await systemctl(program, ['is-active', unit], ctx);
    // A unit still starting at boot is not a failure yet: wait for it, within the deadline.
    while (TRANSITIONAL.has(state.out) && ctx.remaining() > POLL_MS) {
      await sleep(POLL_MS);
      state = await systemctl(program, ['is-active', unit], ctx);
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
