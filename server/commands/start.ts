/** `ota-server start`: open the data directory, print the keys, listen until SIGTERM or SIGINT. */
import type { AddressInfo } from 'node:net';
import { defineCommand } from '../../shared/cli.js';
import { buildApp } from '../app.js';
import { FIELDS, loadConfig } from '../config.js';
import { startMetricsListener } from '../metrics/listener.js';
import { openServices } from '../services.js';

function url(addr: AddressInfo): string {
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

/** The start command. */
export const startCommand = defineCommand({
  name: 'start',
  summary: 'Run the server',
  usage: 'ota-server start [--data DIR] [--host H] [--port P] [--release-key PUB]... [options]',
  help: `Opens (or creates) the data directory: server.db, bundles/, tmp/ (emptied), and the server's
signing key server-key.asc / server-key.pub (made at first start). Prints the server key's
fingerprint and the trusted release keys, then "listening on URL". Stops on SIGTERM or SIGINT.

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
  --config FILE           OTA_SERVER_CONFIG: JSON file with the keys above

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
  },
  async run({ values }) {
    const config = await loadConfig(values);
    const services = await openServices(config);
    const out = (line: string): boolean => process.stdout.write(`${line}\n`);
    out(`data directory ${config.data}`);
    out(`server key ${services.signer.fingerprint} (devices verify check-in answers with ${config.data}/server-key.pub)`);
    for (const k of services.keyring.keys) out(`release key ${k.getFingerprint().toUpperCase()} ${k.getUserIDs().join(', ')}`);
    if (services.keyring.keys.length === 0) process.stderr.write('ota-server start: warning: no release keys (--release-key): every upload will be refused\n');
    if (services.swept.length > 0) out(`removed ${services.swept.length} unrecorded bundle file(s) left by an interrupted upload`);
    const app = await buildApp({ config, services, logger: true });
    await app.listen({ host: config.host, port: config.port });
    out(`listening on ${url(app.server.address() as AddressInfo)}`);
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
