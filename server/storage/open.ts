/**
 * Opens the bundle store the config names: the data directory's bundles/ (storage `local`, the
 * default) or an S3-compatible bucket (storage `s3`). The local directory is prepared in both
 * cases (`ota-server init` and backups expect bundles/ and tmp/), and stays empty with `s3`.
 */
import type { ServerConfig } from '../config.js';
import { BundleStore, type BundleStorage } from './bundle-store.js';
import type { S3Options } from './s3-store.js';

/** The bundle store of `config`. */
export async function openBundleStorage(config: ServerConfig): Promise<BundleStorage> {
  const local = await BundleStore.open(config.data);
  if (config.storage === 'local') {
    if (config.bundleDownload === 'public') local.publicUrl = config.bundlePublicUrl;
    return local;
  }
  // The AWS SDK is loaded only with storage "s3": every other start, and every admin command,
  // stays as quick as without it.
  const { S3BundleStore } = await import('./s3-store.js');
  return S3BundleStore.open(s3Options(config));
}

/** The S3 store's options from the config (storage `s3`). */
export function s3Options(config: ServerConfig): S3Options {
  return {
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    bucket: config.s3Bucket!,
    prefix: config.s3Prefix,
    pathStyle: config.s3PathStyle,
    credentials: config.s3AccessKeyId !== null && config.s3SecretAccessKey !== null ? { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey } : null,
    download: config.bundleDownload,
    presignTtl: config.presignTtl,
    publicUrl: config.bundlePublicUrl,
    maxBundleSize: config.maxBundleSize,
  };
}
