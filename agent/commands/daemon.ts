/**
 * `ota-agent daemon`: run at every boot (systemd unit agent/otaab-agent.service). Resumes the
 * transaction in flight, verify → commit or roll back, then assesses the boot. With an update
 * server it then stays: it checks in at once and every poll interval, and carries out what the
 * server says (client/session.ts). When the machine asked for a reboot it waits for the system
 * to go down, and fails with REBOOT_TIMEOUT if it does not (systemd restarts it, and the
 * transaction resumes). SIGTERM ends it cleanly between two steps.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EXIT, defineCommand } from '../../shared/cli.js';
import { OtaError, isOtaError } from '../../shared/errors.js';
import { requireConnection } from '../client/connection.js';
import { ServerSession } from '../client/session.js';
import { daemonPass, runHeld } from '../daemon.js';
import type { Device } from '../device.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import '../errors.js';

/** Waits for the reboot the machine asked for; SIGTERM (the system going down) ends the wait. */
async function awaitReboot(dev: Device, signal: AbortSignal): Promise<number> {
  log(`waiting up to ${dev.config.rebootTimeoutSeconds} s for the reboot`);
  try {
    await sleep(dev.config.rebootTimeoutSeconds * 1000, undefined, { signal });
  } catch {
    return EXIT.ok;
  }
  throw new OtaError('REBOOT_TIMEOUT', `the reboot command ran but the system was still up ${dev.config.rebootTimeoutSeconds} s later`);
}

/** The daemon command. */
export const daemonCommand = defineCommand({
  name: 'daemon',
  summary: 'Finish the transaction in flight after a boot, assess the boot, then follow the update server',
  usage: 'ota-agent daemon [--config PATH]',
  help: `Run by systemd at every boot. In order:
  1. resumes a transaction in flight where the boot leaves it: on the new slot, runs the
     health checks and commits (X_TRY=0) or rolls back (X_OK=0, reboot); on the old slot
     after GRUB fell back, records "boot-failed"; after a power cut, picks up the step;
  2. otherwise health-checks this boot and resets the slot's try counter when healthy;
  3. with an update server (ota-agent enroll, or the config's server section): sends the
     reports waiting in the outbox, checks in at once and then every pollIntervalSeconds
     (the server may ask for less; +-20 % jitter), verifies each signed answer (refused and
     logged if it fails any check) and carries out an update or rollback directive up to
     the reboot. It runs until stopped.
Without a server it exits 0 after step 2. When it had to run the reboot command, it waits
for the system to stop it, and exits 1 (REBOOT_TIMEOUT) after rebootTimeoutSeconds.
SIGTERM stops it between two steps (a download is interrupted and resumes at the next start).

Options:
${CONFIG_HELP}`,
  options: { ...configOption },
  async run({ values }) {
    const stop = new AbortController();
    const onTerm = (): void => {
      log('SIGTERM: stopping after the current step');
      stop.abort();
    };
    process.on('SIGTERM', onTerm);
    try {
      return await withDevice(values, async (dev) => {
        const pass = await daemonPass(dev, log, stop.signal);
        if (pass.transaction?.status === 'awaiting-reboot') return awaitReboot(dev, stop.signal);
        if (pass.held && !dev.server) {
          const run = await runHeld(dev, pass.held.id, pass.held.retryAfterMs, log, stop.signal);
          return run?.status === 'awaiting-reboot' ? awaitReboot(dev, stop.signal) : EXIT.ok;
        }
        // No server: the boot-time work was all there was to do.
        if (!dev.server) return EXIT.ok;
        const conn = requireConnection(dev.server);
        log(`update server ${conn.url}: checking in now and at most every ${conn.pollIntervalSeconds} s`);
        const run = await new ServerSession(dev, conn, { log, signal: stop.signal, resumeInFlight: true, ...(pass.held ? { held: [pass.held.id] } : {}) }).loop();
        // A rolled-back or failed update is an outcome the daemon handled, not a daemon failure.
        return run ? awaitReboot(dev, stop.signal) : EXIT.ok;
      });
    } catch (err) {
      if (!isOtaError(err, 'AGENT_STOPPED')) throw err;
      log(`stopped: ${err.message}`);
      return EXIT.ok;
    } finally {
      process.off('SIGTERM', onTerm);
    }
  },
});
