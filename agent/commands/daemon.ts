/**
 * `ota-agent daemon`: run at every boot (systemd unit agent/otaab-agent.service). Resumes the
 * transaction in flight, verify → commit or roll back, then assesses the boot. When the
 * machine asked for a reboot it waits for the system to go down, and fails with
 * REBOOT_TIMEOUT if it does not (systemd restarts it, and the transaction resumes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineCommand } from '../../shared/cli.js';
import { OtaError } from '../../shared/errors.js';
import { daemonPass } from '../daemon.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import '../errors.js';

/** The daemon command. */
export const daemonCommand = defineCommand({
  name: 'daemon',
  summary: 'Resume the transaction in flight after a boot (verify, commit or roll back) and assess the boot',
  usage: 'ota-agent daemon [--config PATH]',
  help: `Run by systemd at every boot. In order:
  1. resumes a transaction in flight where the boot leaves it: on the new slot, runs the
     health checks and commits (X_TRY=0) or rolls back (X_OK=0, reboot); on the old slot
     after GRUB fell back, records "boot-failed"; after a power cut, picks up the step;
  2. otherwise health-checks this boot and resets the slot's try counter when healthy.
Exits 0 when done. When it had to run the reboot command, it waits for the system to stop
it, and exits 1 (REBOOT_TIMEOUT) after rebootTimeoutSeconds.

Options:
${CONFIG_HELP}`,
  options: { ...configOption },
  async run({ values }) {
    return withDevice(values, async (dev) => {
      const pass = await daemonPass(dev, log);
      if (pass.transaction?.status === 'awaiting-reboot') {
        log(`waiting up to ${dev.config.rebootTimeoutSeconds} s for the reboot`);
        await sleep(dev.config.rebootTimeoutSeconds * 1000);
        throw new OtaError('REBOOT_TIMEOUT', `the reboot command ran but the system was still up ${dev.config.rebootTimeoutSeconds} s later`);
      }
      // A rolled-back or failed update is an outcome the daemon handled, not a daemon failure.
      return 0;
    });
  },
});
