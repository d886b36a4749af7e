/** `ota-agent rollback`: switch to the other slot if it holds a committed release, and reboot. */
import { defineCommand } from '../../shared/cli.js';
import { rollback } from '../actions/technician.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import { reportRun } from './outcome.js';

/** The rollback command. */
export const rollbackCommand = defineCommand({
  name: 'rollback',
  summary: 'Switch back to the other slot if it holds a committed release, and reboot into it',
  usage: 'ota-agent rollback [--config PATH]',
  help: `Never downloads anything: makes the other slot primary in grubenv (the running slot stays
bootable, as a fallback) and runs the reboot command. Refused (exit 1) when the other slot
holds no committed release, or while a transaction is in flight.

Options:
${CONFIG_HELP}`,
  options: { ...configOption },
  async run({ values }) {
    return withDevice(values, async (dev) => reportRun('ota-agent rollback', dev, await rollback(dev, { log })));
  },
});
