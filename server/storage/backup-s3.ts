/**
 * `ota-server backup` with bundles in an object store: the bundles stay in the bucket (copying
 * terabytes of immutable, content-addressed objects into every backup is what the bucket's own
 * versioning, replication or lifecycle rules are for). The backup holds the database and the
 * server key as always, plus `bundles.json`: every bundle the copied database records, with its
 * key and size, each checked with a HEAD request, so a restore can tell whether the bucket still
 * holds what the database needs. A recorded bundle missing from the bucket fails the backup.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { OtaError } from '../../shared/errors.js';
import type { S3BundleStore } from './s3-store.js';

/** The file a backup lists the object store's bundles in. */
export const BUNDLES_LIST = 'bundles.json';

/** What `bundles.json` holds. */
export interface BundlesList {
  store: string;
  endpoint: string | null;
  bundles: { sha256: string; key: string; size: number }[];
}

/** A `bundlesElsewhere` for backupDataDir: checks and lists the recorded bundles. */
export function listInObjectStore(store: S3BundleStore): (hashes: string[], work: string) => Promise<void> {
  return async (hashes, work) => {
    const list: BundlesList = { store: store.location, endpoint: store.opts.endpoint, bundles: [] };
    for (const sha256 of hashes) {
      const size = await store.head(sha256);
      if (size === null) throw new OtaError('SERVER_BACKUP_FAILED', `bundle ${sha256}: recorded in the database but missing from ${store.location}`);
      list.bundles.push({ sha256, key: store.key(sha256), size });
    }
    const fh = await open(join(work, BUNDLES_LIST), 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(list, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  };
}
