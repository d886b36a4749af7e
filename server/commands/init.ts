/** `ota-server init`: make a data directory; the only command that creates one. */
import { defineCommand } from '../../shared/cli.js';
import { loadConfig } from '../config.js';
import { initDataDir } from '../data-dir.js';
import { dataHelp, dataOptions } from './options.js';

/** The init command. */
export const initCommand = defineCommand({
  name: 'init',
  summary: 'Create a data directory (database, bundle store, server key)',
  usage: 'ota-server init [--data DIR]',
  help: `Creates DIR (mode 0700) with server.db, bundles/, tmp/ and the server's signing key
server-key.asc / server-key.pub, and prints the key's fingerprint. Every other command refuses
a directory that init did not make, so a mistyped --data cannot start a second fleet with a
new key. Running init on an initialised directory changes nothing; a directory that holds
other files is refused.

Options:
${dataHelp}

Example:
  ota-server init --data /var/lib/otaab-server`,
  options: { ...dataOptions },
  async run({ values }) {
    const config = await loadConfig({ data: values.data, config: values.config });
    const r = await initDataDir(config.data, config.databaseUrl);
    process.stdout.write(`${r.created ? 'initialised' : 'already initialised:'} data directory ${config.data}; server key ${r.fingerprint}\n`);
  },
});
