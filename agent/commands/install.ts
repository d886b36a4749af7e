/** `ota-agent install FILE|URL`: install a bundle into the inactive slot and reboot into it. */
import { defineCommand, formatBytes, intOption, progressBar } from '../../shared/cli.js';
import { install } from '../actions/install.js';
import { SERVER_DEFAULTS } from '../config/fields.js';
import { CONFIG_HELP, configOption, log, withDevice } from './common.js';
import { reportRun } from './outcome.js';

/** The install command. */
export const installCommand = defineCommand({
  name: 'install',
  summary: 'Install a bundle (file or http(s) URL) into the inactive slot, then reboot into it',
  usage: 'ota-agent install FILE|URL [--allow-downgrade] [--give-up-after S] [--config PATH]',
  help: `Verifies the bundle's signature against the trusted keys, refuses it if it is not built for
this device or not newer than the highest committed release, then: disarms the inactive
slot, streams the payloads into it (verifying them), fsyncs, reads the slot back, arms it
in grubenv and runs the reboot command. After the reboot, 'ota-agent daemon' health-checks
the new slot and commits it or rolls back. Exit 0 once the reboot was requested.

Options:
  --allow-downgrade  accept a version not greater than the highest committed one
  --give-up-after S  a URL that delivers no byte for S seconds, retries included, fails the
                     install with DOWNLOAD_GAVE_UP (default: server.installGiveUpSeconds, 300)
${CONFIG_HELP}

Examples:
  ota-agent install /media/usb/gateway-2026.11.2.otab
  ota-agent install https://updates.example.com/v1/bundles/3f1c...`,
  options: { ...configOption, 'allow-downgrade': { type: 'boolean' }, 'give-up-after': { type: 'string' } },
  positionals: [1, 1],
  async run({ values, positionals }) {
    const source = positionals[0]!;
    const giveUpFlag = values['give-up-after'] === undefined ? undefined : intOption(values, 'give-up-after', 0, 1, 7 * 24 * 3600);
    return withDevice(values, async (dev) => {
      const giveUpSeconds = giveUpFlag ?? (dev.config.server ?? SERVER_DEFAULTS).installGiveUpSeconds;
      const bar = progressBar(`installing ${source.split('/').pop() ?? source}`);
      try {
        const run = await install(dev, {
          source,
          allowDowngrade: values['allow-downgrade'] === true,
          giveUpMs: giveUpSeconds * 1000,
          onProgress: (done, total) => bar.update(done, total ?? done),
          log,
        });
        bar.end();
        if (run.tx.bytesRead > 0 || run.tx.bytesTotal) log(`read ${formatBytes(run.tx.bytesRead)} of the bundle`);
        return reportRun('ota-agent install', dev, run);
      } finally {
        bar.end();
      }
    });
  },
});
