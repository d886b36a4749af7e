/** `ota-agent check`: send the reports, check in now, print what happened and act on it like the daemon. */
import { EXIT, defineCommand, formatError, printJson, progressBar } from '../../shared/cli.js';
import type { OtaError } from '../../shared/errors.js';
import type { Directive } from '../../shared/protocol.js';
import { requireConnection } from '../client/connection.js';
import { pollIntervalSeconds } from '../client/poll.js';
import { ServerSession, runOf, type CheckReport } from '../client/session.js';
import { transactionView } from '../actions/status.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import { reportRun } from './outcome.js';

function errorView(e: OtaError): { code: string; message: string } {
  return { code: e.code, message: e.message };
}

function directiveView(d: Directive): Record<string, unknown> {
  if (d.type === 'update') {
    const r = d.release;
    return { type: 'update', version: r.version, size: r.size, sha256: r.sha256, url: r.url };
  }
  return { ...d };
}

function describe(d: Directive): string {
  if (d.type === 'update') return `update to ${d.release.version} (${d.release.size} bytes)`;
  if (d.type === 'rollback') return `rollback (request ${d.id})`;
  return 'none';
}

/** The report as JSON. */
function jsonView(r: CheckReport, pollConfig: number): Record<string, unknown> {
  const c = r.checkin;
  const run = runOf(r);
  const a = r.action;
  return {
    server: r.server,
    reports: { sent: r.reports.sent, dropped: r.reports.dropped, pending: r.reports.pending },
    ...(r.error ? { error: errorView(r.error) } : {}),
    ...(c
      ? {
          checkin: c.ok
            ? { verified: true, directive: directiveView(c.answer.directive), pollInterval: pollIntervalSeconds(pollConfig, c.answer.pollInterval), expires: c.answer.expires }
            : { verified: false, refused: errorView(c.refused) },
        }
      : {}),
    ...(r.inFlight ? { inFlight: transactionView(r.inFlight) } : {}),
    ...(a && a.type !== 'none'
      ? {
          action: {
            type: a.type,
            ...(a.type === 'update' ? { version: a.version, ...(a.skipped ? { skipped: true } : {}) } : { id: a.id }),
            ...(a.refused ? { refused: errorView(a.refused) } : {}),
            ...(run ? { status: run.status, transaction: transactionView(run.tx) } : {}),
          },
        }
      : {}),
  };
}

/** The check command. */
export const checkCommand = defineCommand({
  name: 'check',
  summary: 'Send waiting reports, check in with the update server now, and act on its answer',
  usage: 'ota-agent check [--json] [--config PATH]',
  help: `Does one round of what the daemon does at every poll interval: sends the reports waiting
in the outbox, checks in with a fresh nonce, verifies the signed answer (server key, device
id, nonce, expiry) and prints it. An update directive is installed up to the reboot, a
rollback directive switches to the other committed slot, exactly as the daemon would.
A transaction already in flight is left to the daemon.

Exit 0 when the check-in worked (and what it started did not fail); 1 when the server could
not be reached, its answer was refused, or the directive could not be carried out.

Options:
  --json         print what happened as JSON: {server, reports, checkin, action, ...}
${CONFIG_HELP}`,
  options: { ...configOption, json: { type: 'boolean' } },
  async run({ values }) {
    return withDevice(values, async (dev) => {
      const conn = requireConnection(dev.server);
      const bar = progressBar('downloading');
      const session = new ServerSession(dev, conn, { log, resumeInFlight: false, logCheckinErrors: false, onProgress: (done, total) => bar.update(done, total ?? done) });
      let r: CheckReport;
      try {
        r = await session.check();
      } finally {
        bar.end();
      }
      const run = runOf(r);
      if (run) await session.flush();
      if (values.json) printJson(jsonView(r, conn.pollIntervalSeconds));
      const out = (line: string): void => {
        if (!values.json) process.stdout.write(`${line}\n`);
      };
      out(`reports: ${r.reports.sent} sent${r.reports.dropped ? `, ${r.reports.dropped} refused by the server` : ''}, ${r.reports.pending} waiting`);
      const c = r.checkin;
      if (!c) {
        process.stderr.write(`ota-agent check: server ${r.server}: ${formatError(r.error!)}\n`);
        return EXIT.failure;
      }
      if (!c.ok) {
        out(`check-in at ${r.server}: answer refused`);
        process.stderr.write(`ota-agent check: answer refused: ${formatError(c.refused)}\n`);
        return EXIT.failure;
      }
      const every = pollIntervalSeconds(conn.pollIntervalSeconds, c.answer.pollInterval);
      out(`check-in at ${r.server}: answer verified (expires ${c.answer.expires}); directive: ${describe(c.answer.directive)}; the daemon checks in every ${every} s`);
      if (r.inFlight) {
        out(`transaction ${r.inFlight.id} (${r.inFlight.kind} ${r.inFlight.version}) is in flight in state ${r.inFlight.state}: left to ota-agent daemon`);
        return EXIT.ok;
      }
      const a = r.action;
      // No action although there was a directive: it failed for now (logged); the daemon retries.
      if (!a) return EXIT.failure;
      if (a.type === 'none') return EXIT.ok;
      if (a.type === 'update' && a.skipped) {
        out(`update ${a.version}: refused earlier by this device; not downloaded again`);
        return EXIT.ok;
      }
      if (a.refused) {
        process.stderr.write(`ota-agent check: ${a.type} not carried out: ${formatError(a.refused)}\n`);
        return EXIT.failure;
      }
      if (!run) return EXIT.failure;
      if (!values.json) return reportRun('ota-agent check', dev, run);
      const fine = run.status === 'awaiting-reboot' || run.tx.state === 'committed' || (run.tx.kind === 'rollback' && run.tx.state === 'rolled-back');
      return fine ? EXIT.ok : EXIT.failure;
    });
  },
});
