/**
 * Runs the configured health checks in order within one overall deadline. All checks run
 * (the history shows every result), and the first that did not pass names the reason:
 * `health-check:<name>` when it failed, `timeout` when the deadline cut it short.
 */
import type { AgentConfig, HealthCheckConfig } from '../config/types.js';
import { runCommandCheck } from './command.js';
import { runHttpCheck } from './http.js';
import { runSystemdCheck } from './systemd.js';
import type { CheckContext, CheckResult, HealthReport } from './types.js';

function runOne(check: HealthCheckConfig, config: AgentConfig, ctx: CheckContext): Promise<Omit<CheckResult, 'seconds'>> {
  if ('systemd' in check) return runSystemdCheck(check, config.tools.systemctl, ctx);
  if ('http' in check) return runHttpCheck(check, ctx);
  return runCommandCheck(check, ctx);
}

/** The reason a report failed, from its results. */
export function failureReason(results: readonly CheckResult[]): string | undefined {
  const first = results.find((r) => r.verdict !== 'pass');
  if (!first) return undefined;
  return first.verdict === 'timeout' ? 'timeout' : `health-check:${first.name}`;
}

/** Runs every check of `config` and says whether the system is healthy. */
export async function runHealthChecks(config: AgentConfig): Promise<HealthReport> {
  const deadline = Date.now() + config.healthDeadlineSeconds * 1000;
  const ctx: CheckContext = { remaining: () => deadline - Date.now() };
  const results: CheckResult[] = [];
  for (const check of config.healthChecks) {
    const started = Date.now();
    const r = await runOne(check, config, ctx);
    results.push({ ...r, seconds: Math.round((Date.now() - started) / 100) / 10 });
  }
  const reason = failureReason(results);
  return reason === undefined ? { passed: true, results } : { passed: false, reason, results };
}
