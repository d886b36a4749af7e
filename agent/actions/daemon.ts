/**
 * What the daemon does at every start: resume the transaction in flight (a boot usually means
 * one is waiting to be verified), then assess the boot: every boot of a slot is health-checked,
 * not only the first after an update, and only a healthy boot gets its try counter reset.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { machineFor, type Device } from './device.js';
import type { HealthReport } from '../health/types.js';
import { HoldError } from '../machine/gates.js';
import type { RunResult } from '../machine/runner.js';

/** What one daemon pass did. */
export interface DaemonPass {
  /** The transaction resumed, if there was one. */
  readonly transaction?: RunResult;
  /** The boot assessment, when it ran. */
  readonly assessment?: HealthReport;
  /** The transaction waits at a gate (maintenance window, busy); ask again after `retryAfterMs`. */
  readonly held?: { readonly id: string; readonly retryAfterMs: number };
}

/** Runs the health checks for a boot that no transaction assessed, and records the result. */
export async function assessBoot(dev: Device, log: (l: string) => void): Promise<HealthReport | undefined> {
  const state = await dev.boot.getState(dev.booted);
  // TRY=0: this boot was already judged (by a commit or a rollback), or never counted.
  if (state.tries === 0) return undefined;
  log(`slot ${dev.booted}: boot attempt ${state.tries}; running ${dev.config.healthChecks.length} health check(s)`);
  // Loaded when a boot is assessed, not by every agent command that imports this module.
  const { runHealthChecks } = await import('../health/run.js');
  const report = await runHealthChecks(dev.config);
  // A slot marked bad (OK=0) stays bad: a healthy boot is no reason to overrule the technician.
  if (report.passed && state.ok) await dev.boot.setState(dev.booted, 'good');
  dev.store.write(`slot ${dev.booted}: boot assessed`, (w) =>
    w.event({ type: 'boot', slot: dev.booted, reason: report.reason ?? null, details: { passed: report.passed, tries: state.tries, results: report.results } }),
  );
  log(`slot ${dev.booted}: ${report.passed ? 'healthy, marked good' : `not healthy (${report.reason ?? ''}); left to the bootloader's try counter`}`);
  return report;
}

/** Without a server: asks a held transaction's gates again until it may go on (or is stopped). */
export async function runHeld(dev: Device, id: string, retryAfterMs: number, log: (l: string) => void, signal: AbortSignal): Promise<RunResult | undefined> {
  let wait = retryAfterMs;
  for (;;) {
    try {
      await sleep(Math.max(1000, wait), undefined, { signal });
    } catch {
      return undefined;
    }
    const tx = dev.store.transaction(id);
    if (!tx || tx.finishedAt !== null) return undefined;
    try {
      return await machineFor(dev, { log, signal }).run(tx);
    } catch (err) {
      if (!(err instanceof HoldError)) throw err;
      wait = err.retryAfterMs;
    }
  }
}

/**
 * One pass: resume, then assess the boot when no transaction is waiting for a reboot.
 * `signal` (SIGTERM) stops the machine between two states.
 */
export async function daemonPass(dev: Device, log: (l: string) => void, signal?: AbortSignal): Promise<DaemonPass> {
  const tx = dev.store.current();
  let transaction: RunResult | undefined;
  if (tx) {
    log(`resuming transaction ${tx.id} (${tx.kind} ${tx.version}) found in state ${tx.state}, booted from slot ${dev.booted}`);
    try {
      transaction = await machineFor(dev, { log, ...(signal ? { signal } : {}) }).resume(tx);
    } catch (err) {
      if (!(err instanceof HoldError)) throw err;
      return { held: { id: tx.id, retryAfterMs: err.retryAfterMs } };
    }
    log(`transaction ${tx.id}: ${transaction.status === 'finished' ? `ended ${transaction.tx.state}${transaction.tx.reason ? ` (${transaction.tx.reason})` : ''}` : 'waiting for the reboot'}`);
    if (transaction.status === 'awaiting-reboot') return { transaction };
  }
  const assessment = await assessBoot(dev, log);
  return { ...(transaction ? { transaction } : {}), ...(assessment ? { assessment } : {}) };
}
