/** `ota-server key export|fingerprint`: the server's public key, for device images and agents. */
import { UsageError, defineCommand } from '../../shared/cli.js';
import { loadConfig } from '../config.js';
import { loadOrCreateServerKey } from '../server-key.js';
import { requireInitialised } from '../data-dir.js';
import { dataHelp, dataOptions } from './options.js';

/** The key command. */
export const keyCommand = defineCommand({
  name: 'key',
  summary: 'Print the server\'s public key (export) or its fingerprint',
  usage: 'ota-server key export|fingerprint [--data DIR]',
  help: `Devices verify every check-in answer with this key: put it into the agent's config or
image. It is made by 'ota-server init'.

Options:
${dataHelp}

Example:
  ota-server key export --data /var/lib/otaab-server > server.pub`,
  options: { ...dataOptions },
  positionals: [1, 1],
  async run({ values, positionals }) {
    const action = positionals[0];
    if (action !== 'export' && action !== 'fingerprint') throw new UsageError(`unknown action "${action ?? ''}"; use export or fingerprint`);
    const config = await loadConfig({ data: values.data, config: values.config });
    await requireInitialised(config.data);
    const key = await loadOrCreateServerKey(config.data);
    process.stdout.write(action === 'export' ? key.publicKey.endsWith('\n') ? key.publicKey : `${key.publicKey}\n` : `${key.fingerprint}\n`);
  },
});
