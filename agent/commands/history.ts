/** `ota-agent history`: every transaction with its transitions, health checks and reasons. */
import { defineCommand, intOption, printJson } from '../../shared/cli.js';
import type { HistoryEvent } from '../store/types.js';
import { transactionView } from '../actions/status.js';
import { CONFIG_HELP, configOption, withDevice } from './common.js';

function eventLine(e: HistoryEvent): string {
  const at = e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const why = e.reason ? ` (${e.reason})` : '';
  if (e.type === 'transition') {
    const resumed = e.details?.resumed !== undefined ? ' (resumed after a restart)' : '';
    return `  ${at}  ${e.fromState ?? 'start'} -> ${e.toState ?? ''}${why} on slot ${e.slot ?? '?'}${resumed}`;
  }
  if (e.type === 'health' || e.type === 'boot') {
    const results = (e.details?.results as Array<{ name: string; verdict: string; excerpt: string }> | undefined) ?? [];
    const label = e.type === 'boot' ? `boot of slot ${e.slot ?? '?'} assessed` : 'health checks';
    return [`  ${at}  ${label}: ${e.details?.passed ? 'passed' : 'failed'}${why}`, ...results.map((r) => `      ${r.name}: ${r.verdict} ${r.excerpt.split('\n')[0]!.slice(0, 120)}`)].join('\n');
  }
  if (e.type === 'error' && typeof e.details?.retry === 'number') {
    return `  ${at}  download retry ${e.details.retry} in ${(Number(e.details.delayMs) / 1000).toFixed(1)} s after: ${String(e.details.error ?? '')}`;
  }
  if (e.type === 'error') return `  ${at}  error in ${e.fromState ?? '?'}: ${String(e.details?.error ?? '')}`;
  if (e.type === 'server') return `  ${at}  server${why}: ${String(e.details?.error ?? '')}`;
  return `  ${at}  ${e.type}${why} slot ${e.slot ?? '?'}`;
}

/** The history command. */
export const historyCommand = defineCommand({
  name: 'history',
  summary: 'List transactions (newest first) with their transitions, health checks and reasons',
  usage: 'ota-agent history [--json] [--limit N] [--config PATH]',
  help: `Options:
  --json         print as JSON: {transactions: [... with events], events: [boot and technician events]}
  --limit N      at most N transactions (default 20)
${CONFIG_HELP}`,
  options: { ...configOption, json: { type: 'boolean' }, limit: { type: 'string' } },
  async run({ values }) {
    const limit = intOption(values, 'limit', 20, 1, 10_000);
    await withDevice(values, async (dev) => {
      const txs = dev.store.transactions(limit).map((t) => ({ ...transactionView(t), events: dev.store.events({ transactionId: t.id }) }));
      const other = dev.store.events({ limit: 200 }).filter((e) => e.transactionId === null);
      if (values.json) {
        printJson({ transactions: txs, events: other });
        return;
      }
      if (txs.length === 0 && other.length === 0) {
        process.stdout.write('no history yet\n');
        return;
      }
      for (const t of txs) {
        process.stdout.write(`${t.createdAt}  ${t.kind} ${t.version}  slot ${t.sourceSlot} -> ${t.targetSlot}  ${t.state}${t.reason ? ` (${t.reason})` : ''}  ${t.id}\n`);
        for (const e of t.events) process.stdout.write(`${eventLine(e)}\n`);
      }
      if (other.length > 0) {
        process.stdout.write('boot, technician and server events:\n');
        for (const e of other) process.stdout.write(`${eventLine(e)}\n`);
      }
    });
  },
});
