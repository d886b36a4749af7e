/** `ota-agent mark-bad`: mark the running slot bad (rolls back an update being verified on it). */
import { defineCommand } from '../../shared/cli.js';
import { otherSlot } from '../config/types.js';
import { markBad } from '../actions/technician.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import { reportRun } from './outcome.js';

/** The mark-bad command. */
export const markBadCommand = defineCommand({
  name: 'mark-bad',
  summary: 'Mark the running slot bad (X_OK=0); rolls back an update being verified on it',
  usage: 'ota-agent mark-bad [--config PATH]',
  help: `With an update in state "verifying" on this slot, rolls it back with reason "technician"
(and reboots into the old slot). Otherwise only sets X_OK=0: GRUB skips this slot from the
next boot on; reboot when you are ready. Refused during any other state of a transaction.

Options:
${CONFIG_HELP}`,
  options: { ...configOption },
  async run({ values }) {
    return withDevice(values, async (dev) => {
      const r = await markBad(dev, log);
      if (r.transaction) return reportRun('ota-agent mark-bad', dev, r.transaction);
      const other = dev.store.slots()[otherSlot(dev.booted)];
      const next = other.status === 'committed' ? `the next boot starts slot ${other.name} (${other.version ?? 'unknown version'})` : `slot ${other.name} holds no committed release: GRUB boots whatever qualifies, and never nothing`;
      process.stdout.write(`slot ${r.slot} marked bad; ${next}\n`);
      return 0;
    });
  },
});
