/** How install, rollback and the mark commands report where a transaction stopped. */
import { EXIT } from '../../shared/cli.js';
import type { Device } from '../actions/device.js';
import type { RunResult } from '../machine/runner.js';

/** Prints the stop point of a run; exit 1 when the transaction failed or rolled back. */
export function reportRun(program: string, dev: Device, run: RunResult): number {
  const tx = run.tx;
  if (run.status === 'awaiting-reboot') {
    const to = tx.state === 'rolling-back' ? `back to slot ${tx.kind === 'install' ? tx.sourceSlot : tx.targetSlot}` : `into slot ${tx.targetSlot}`;
    process.stdout.write(`${tx.kind} ${tx.version}: ${tx.state}; the system reboots ${to} (transaction ${tx.id})\n`);
    return EXIT.ok;
  }
  if (tx.state === 'committed') {
    process.stdout.write(`${tx.kind} ${tx.version}: committed on slot ${tx.targetSlot} (transaction ${tx.id})\n`);
    return EXIT.ok;
  }
  if (tx.state === 'rolled-back' && tx.kind === 'rollback') {
    process.stdout.write(`rollback to ${tx.version}: running on slot ${tx.targetSlot} (transaction ${tx.id})\n`);
    return EXIT.ok;
  }
  const last = dev.store.events({ transactionId: tx.id }).filter((e) => e.details && typeof e.details.error === 'string').pop();
  const cause = last ? String(last.details!.error) : tx.reason ?? 'unknown reason';
  process.stderr.write(`${program}: ${cause}; transaction ${tx.id} ${tx.state} (${tx.reason ?? 'no reason'}), slot ${tx.targetSlot} is not armed\n`);
  return EXIT.failure;
}
