/** `ota-server backup`: a consistent copy of a data directory, taken while the server runs. */
import { defineCommand, formatBytes, required } from '../../shared/cli.js';
import { resolve } from 'node:path';
import { loadConfig } from '../config.js';
import { backupDataDir, requireInitialised } from '../data-dir.js';
import { s3Options } from '../storage/open.js';
import { OtaError } from '../../shared/errors.js';
import { dataHelp, dataOptions } from './options.js';

/** The backup command. */
export const backupCommand = defineCommand({
  name: 'backup',
  summary: 'Copy the database, bundles and server key consistently, even while the server runs',
  usage: 'ota-server backup --out DIR [--data DIR]',
  help: `Writes a new directory OUT that is itself a data directory: the database copied with
SQLite's online backup (one consistent moment, while the server keeps serving), the bundles
that moment records, and the server key (OUT holds the private server key: keep it as safe
as the data directory). With storage "s3" the bundles stay in the bucket (use its
versioning): OUT lists them, each checked, in bundles.json. OUT is assembled beside its final
name and renamed last, so an interrupted backup never looks complete. Restore: stop the server, put OUT in place of the
data directory (or start with --data OUT). See docs/SERVER.md, "Backups and restore".

Options:
  --out DIR        the backup directory to create (must not exist)
${dataHelp}

Example:
  ota-server backup --data /var/lib/otaab-server --out /srv/backup/otaab-$(date +%F)`,
  options: { ...dataOptions, out: { type: 'string', short: 'o' } },
  async run({ values }) {
    const out = resolve(required(values, 'out'));
    const config = await loadConfig({ data: values.data, config: values.config });
    await requireInitialised(config.data);
    if (config.databaseUrl !== null) {
      // The database is not in the data directory: a copy of the directory would not be a backup.
      throw new OtaError(
        'SERVER_BACKUP_POSTGRES',
        'this server keeps its database in PostgreSQL (databaseUrl): back it up with pg_dump --format=custom (or the database service\'s own backups) and copy the bundle storage and the server key beside it; see docs/DEPLOYMENT.md',
      );
    }
    if (config.storage === 's3') {
      // The bundles stay in the bucket; the backup lists and checks them (storage/backup-s3.ts).
      // Loaded only here: the AWS SDK is large, and a local backup does not need it.
      const [{ S3BundleStore }, { BUNDLES_LIST, listInObjectStore }] = await Promise.all([import('../storage/s3-store.js'), import('../storage/backup-s3.js')]);
      const store = await S3BundleStore.open(s3Options(config));
      try {
        const r = await backupDataDir(config.data, out, listInObjectStore(store));
        process.stdout.write(`backed up ${config.data} to ${r.out}: database, server key; ${r.bundles} bundle(s) left in ${store.location}, listed in ${BUNDLES_LIST} (the object store's versioning keeps them)\n`);
      } finally {
        store.client.destroy();
      }
      return;
    }
    const r = await backupDataDir(config.data, out);
    process.stdout.write(`backed up ${config.data} to ${r.out}: database, ${r.bundles} bundle(s) (${formatBytes(r.bytes)}), server key\n`);
  },
});
