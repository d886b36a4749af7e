/** `ota-server start`: open the data directory, print the keys, listen until SIGTERM or SIGINT. */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { defineCommand } from '../../shared/cli.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { buildApp } from '../app.js';
import { FIELDS, loadConfig, type ServerConfig } from '../config.js';
import { requireInitialised } from '../data-dir.js';
import { startMetricsListener } from '../metrics/listener.js';
import { refusePrivateReleaseKeys } from '../release-keys.js';
import { openServices } from '../services.js';

function url(addr: AddressInfo, tls: boolean): string {
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `${tls ? 'https' : 'http'}://${host}:${addr.port}`;
}

/** The certificate and key files of the config, read once at start. */
async function readTls(config: ServerConfig): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  if (config.tlsCert === null || config.tlsKey === null) return undefined;
  const read = async (what: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (cause) {
      throw new OtaError('SERVER_TLS_UNUSABLE', `TLS ${what} ${path}: cannot be read (${errorMessage(cause)})`, { cause });
    }
  };
  return { cert: await read('certificate', config.tlsCert), key: await read('key', config.tlsKey) };
}

/** `app.listen`, with a busy port or a bad certificate turned into one coded line. */
async function listen(app: Awaited<ReturnType<typeof buildApp>>, config: ServerConfig): Promise<void> {
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    await app.close();
    if (code === 'EADDRINUSE') throw new OtaError('SERVER_PORT_IN_USE', `${config.host}:${config.port} is in use by another process: stop it or choose another --port`, { cause: err });
    if (code === 'EACCES') throw new OtaError('SERVER_PORT_IN_USE', `${config.host}:${config.port} may not be bound by this user (ports below 1024 need root or CAP_NET_BIND_SERVICE)`, { cause: err });
    throw err;
  }
}

/** The start command. */
export const startCommand = defineCommand({
  name: 'start',
  summary: 'Run the server',
  usage: 'ota-server start [--data DIR] [--host H] [--port P] [--release-key PUB]... [options]',
  help: `Opens the data directory that 'ota-server init' made (server.db, bundles/, tmp/ emptied,
the server's signing key server-key.asc / server-key.pub) and refuses any other. Prints the
server key's fingerprint and the trusted release keys (public keys only: a private key is
refused), then "listening on URL". Stops on SIGTERM or SIGINT.

Options (each also an environment variable and a config file key; flags win, then the
environment, then the file):
  --data DIR              ${FIELDS.data.env}, "data"
  --host HOST             ${FIELDS.host.env}, "host" (default 0.0.0.0)
  --port PORT             ${FIELDS.port.env}, "port" (default 8080; 0 picks a free port)
  --release-key FILE      ${FIELDS.releaseKeys.env} (comma-separated), "releaseKeys"; repeatable
  --public-url URL        ${FIELDS.publicUrl.env}, "publicUrl": base of bundle URLs given to devices
  --max-bundle-size N     ${FIELDS.maxBundleSize.env}, "maxBundleSize" in bytes (default 8 GiB)
  --max-json-body N       ${FIELDS.maxJsonBody.env}, "maxJsonBody" in bytes (default 256 KiB)
  --answer-ttl S          ${FIELDS.answerTtl.env}, "answerTtl": seconds a check-in answer is valid (default 300)
  --poll-interval S       ${FIELDS.pollInterval.env}, "pollInterval": seconds between check-ins (default 300)
  --log-level LEVEL       ${FIELDS.logLevel.env}, "logLevel": fatal|error|warn|info|debug|trace|silent
  --metrics-token T       ${FIELDS.metricsToken.env}, "metricsToken": Prometheus scrapes GET /metrics with it
  --metrics-listen H:P    ${FIELDS.metricsListen.env}, "metricsListen": serve GET /metrics on this address instead
  --metrics on|off        ${FIELDS.metrics.env}, "metrics": Prometheus instrumentation (default on)
  --tls-cert FILE         ${FIELDS.tlsCert.env}, "tlsCert": PEM certificate chain; serve HTTPS
  --tls-key FILE          ${FIELDS.tlsKey.env}, "tlsKey": its PEM private key (with --tls-cert)
  --storage local|s3      ${FIELDS.storage.env}, "storage": where bundles live (default local: DIR/bundles)
  --s3-endpoint URL       ${FIELDS.s3Endpoint.env}, "s3Endpoint": MinIO, Garage...; default AWS
  --s3-region R           ${FIELDS.s3Region.env}, "s3Region" (default us-east-1)
  --s3-bucket B           ${FIELDS.s3Bucket.env}, "s3Bucket" (required with --storage s3)
  --s3-prefix P/          ${FIELDS.s3Prefix.env}, "s3Prefix": key prefix ending in /
  --s3-path-style BOOL    ${FIELDS.s3PathStyle.env}, "s3PathStyle": endpoint/bucket/key requests
                          credentials: "s3AccessKeyId", "s3SecretAccessKey" (file or
                          ${FIELDS.s3AccessKeyId.env}, ${FIELDS.s3SecretAccessKey.env}), else AWS_ACCESS_KEY_ID...
  --bundle-download M     ${FIELDS.bundleDownload.env}, "bundleDownload": server|presigned|public
  --bundle-public-url URL ${FIELDS.bundlePublicUrl.env}, "bundlePublicUrl": CDN base serving <base>/<sha256>
  --presign-ttl S         ${FIELDS.presignTtl.env}, "presignTtl": seconds a presigned URL is valid (default 900)
  --config FILE           OTA_SERVER_CONFIG: JSON file with the keys above; see docs/STORAGE.md

Example:
  ota-server start --data /var/lib/otaab-server --port 8443 --release-key /etc/otaab/ops.pub \\
    --public-url https://ota.example.com`,
  options: {
    data: { type: 'string', short: 'd' },
    host: { type: 'string' },
    port: { type: 'string', short: 'p' },
    'release-key': { type: 'string', multiple: true },
    config: { type: 'string', short: 'c' },
    'public-url': { type: 'string' },
    'max-bundle-size': { type: 'string' },
    'max-json-body': { type: 'string' },
    'answer-ttl': { type: 'string' },
    'poll-interval': { type: 'string' },
    'log-level': { type: 'string' },
    'metrics-token': { type: 'string' },
    'metrics-listen': { type: 'string' },
    metrics: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    storage: { type: 'string' },
    's3-endpoint': { type: 'string' },
    's3-region': { type: 'string' },
    's3-bucket': { type: 'string' },
    's3-prefix': { type: 'string' },
    's3-path-style': { type: 'string' },
    's3-access-key-id': { type: 'string' },
    's3-secret-access-key': { type: 'string' },
    'bundle-download': { type: 'string' },
    'bundle-public-url': { type: 'string' },
    'presign-ttl': { type: 'string' },
  },
  async run({ values }) {
    const config = await loadConfig(values);
    await requireInitialised(config.data);
    await refusePrivateReleaseKeys(config.releaseKeys);
    const tls = await readTls(config);
    const services = await openServices(config);
    const out = (line: string): boolean => process.stdout.write(`${line}\n`);
    out(`data directory ${config.data}`);
    out(`server key ${services.signer.fingerprint} (devices verify check-in answers with ${config.data}/server-key.pub)`);
    const releaseKeys = await services.keyring.publicKeys();
    for (const k of releaseKeys) out(`release key ${k.getFingerprint().toUpperCase()} ${k.getUserIDs().join(', ')}`);
    if (releaseKeys.length === 0) process.stderr.write('ota-server start: warning: no release keys (--release-key): every upload will be refused\n');
    if (services.bundles.kind !== 'local') out(`bundles in ${services.bundles.location} (downloads: ${config.bundleDownload})`);
    if (services.swept.length > 0) out(`removed ${services.swept.length} unrecorded bundle file(s) left by an interrupted upload`);
    let app;
    try {
      app = await buildApp({ config, services, logger: true, ...(tls ? { tls } : {}) });
    } catch (err) {
      // A key that does not match its certificate, or a malformed PEM, fails in the server's constructor.
      if (tls && !(err instanceof OtaError)) throw new OtaError('SERVER_TLS_UNUSABLE', `TLS certificate ${config.tlsCert} and key ${config.tlsKey}: ${errorMessage(err)}`, { cause: err });
      throw err;
    }
    await listen(app, config);
    out(`listening on ${url(app.server.address() as AddressInfo, tls !== undefined)}`);
    const metrics = config.metricsListen !== null ? await startMetricsListener(app.metrics, config.metricsListen, config.metricsToken) : null;
    if (metrics) out(`metrics on ${metrics.url}`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        out(`${signal}: closing`);
        metrics?.server.close();
        app.close().then(resolve, resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
  },
});
