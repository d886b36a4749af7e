/** `ota-agent mark-good`: mark the running slot good (commits a transaction being verified on it). */
import { defineCommand } from '../../shared/cli.js';
import { markGood } from '../actions/technician.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import { reportRun } from './outcome.js';

/** The mark-good command. */
export const markGoodCommand = defineCommand({
  name: 'mark-good',
  summary: 'Mark the running slot good (X_OK=1 X_TRY=0); commits an update being verified on it',
  usage: 'ota-agent mark-good [--config PATH]',
  help: `Use when the health checks are wrong and the running system is fine. With an update in
state "verifying" on this slot, commits it (as the checks would have). Refused during any
other state of a transaction.

Options:
${CONFIG_HELP}`,
  options: { ...configOption },
  async run({ values }) {
    return withDevice(values, async (dev) => {
      const r = await markGood(dev, log);
      if (r.transaction) return reportRun('ota-agent mark-good', dev, r.transaction);
      process.stdout.write(`slot ${r.slot} marked good\n`);
      return 0;
    });
  },
});
