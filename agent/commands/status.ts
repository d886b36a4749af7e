/** `ota-agent status`: the booted slot, each slot's state and version, the transaction in flight, the boot environment. */
import { defineCommand, printJson } from '../../shared/cli.js';
import { collectStatus, formatStatus } from '../actions/status.js';
import { CONFIG_HELP, configOption, withDevice } from './common.js';

/** The status command. */
export const statusCommand = defineCommand({
  name: 'status',
  summary: 'Show the booted slot, both slots, the transaction in flight and the boot environment',
  usage: 'ota-agent status [--json] [--config PATH]',
  help: `Reads the agent store, /proc/cmdline and the boot environment (grubenv, the U-Boot env or
tryboot's autoboot.txt, as boot.bootloader says); changes nothing.
In the slot table, * marks the booted slot; "state" is what the agent knows the slot holds
(unknown, installing, installed, committed, bad); "bootable" and "tries" come from the boot
environment. The last line is that environment, labelled by the bootloader.

Options:
  --json         print the status as JSON
${CONFIG_HELP}`,
  options: { ...configOption, json: { type: 'boolean' } },
  async run({ values }) {
    await withDevice(values, async (dev) => {
      const s = await collectStatus(dev);
      if (values.json) printJson(s);
      else process.stdout.write(`${formatStatus(s)}\n`);
    });
  },
});
