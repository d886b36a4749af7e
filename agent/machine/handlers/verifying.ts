/** verifying: on the new slot, run the health checks within the deadline; results go to history. */
import { OtaError } from '../../../shared/errors.js';
import type { Handler } from '../runner.js';

/** The verifying handler. */
export const verifying: Handler = async (ctx, tx) => {
  if (ctx.booted !== tx.targetSlot) {
    // resume.ts sends this case to rolling-back; reaching it here is a bug, and fatal.
    throw new OtaError('SLOT_ACTIVE', `transaction ${tx.id}: verifying slot ${tx.targetSlot} while running from ${ctx.booted}`);
  }
  // Loaded here, on the new slot, not by every agent start (an install never runs the checks).
  const { runHealthChecks } = await import('../../health/run.js');
  ctx.log(`transaction ${tx.id}: running ${ctx.config.healthChecks.length} health check(s)`);
  const report = await runHealthChecks(ctx.config);
  ctx.store.write(`transaction ${tx.id}: health checks`, (w) =>
    w.event({
      transactionId: tx.id,
      type: 'health',
      slot: ctx.booted,
      reason: report.reason ?? null,
      details: { passed: report.passed, results: report.results },
    }),
  );
  return report.passed ? { outcome: 'healthy' } : { outcome: 'unhealthy', reason: report.reason! };
};
