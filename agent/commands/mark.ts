/** `ota-agent mark-good` and `ota-agent mark-bad`: a technician's verdict on the running slot. */
import { defineCommand, type Command } from '../../shared/cli.js';
import { otherSlot } from '../config/types.js';
import { markSlot, type Verdict } from '../actions/technician.js';
import type { Device } from '../actions/device.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import { reportRun } from './outcome.js';

/** What differs between the two commands: their help, and the line printed when no transaction was decided. */
const TEXT: Record<Verdict, { summary: string; help: string; done: (dev: Device) => string }> = {
  good: {
    summary: 'Mark the running slot good (X_OK=1 X_TRY=0); commits an update being verified on it',
    help: `Use when the health checks are wrong and the running system is fine. With an update in
state "verifying" on this slot, commits it (as the checks would have). Refused during any
other state of a transaction.`,
    done: (dev) => `slot ${dev.booted} marked good`,
  },
  bad: {
    summary: 'Mark the running slot bad (X_OK=0); rolls back an update being verified on it',
    help: `With an update in state "verifying" on this slot, rolls it back with reason "technician"
(and reboots into the old slot). Otherwise only sets X_OK=0: GRUB skips this slot from the
next boot on; reboot when you are ready. Refused during any other state of a transaction.`,
    done: (dev) => {
      const other = dev.store.slots()[otherSlot(dev.booted)];
      const next = other.status === 'committed' ? `the next boot starts slot ${other.name} (${other.version ?? 'unknown version'})` : `slot ${other.name} holds no committed release: GRUB boots whatever qualifies, and never nothing`;
      return `slot ${dev.booted} marked bad; ${next}`;
    },
  },
};

function markCommand(verdict: Verdict): Command {
  const name = `mark-${verdict}`;
  const text = TEXT[verdict];
  return defineCommand({
    name,
    summary: text.summary,
    usage: `ota-agent ${name} [--config PATH]`,
    help: `${text.help}

Options:
${CONFIG_HELP}`,
    options: { ...configOption },
    async run({ values }) {
      return withDevice(values, async (dev) => {
        const r = await markSlot(dev, verdict, log);
        if (r.transaction) return reportRun(`ota-agent ${name}`, dev, r.transaction);
        process.stdout.write(`${text.done(dev)}\n`);
        return 0;
      });
    },
  });
}

/** The mark-good command. */
export const markGoodCommand = markCommand('good');
/** The mark-bad command. */
export const markBadCommand = markCommand('bad');
