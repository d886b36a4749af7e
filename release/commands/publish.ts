/** `ota-release publish`: point a server channel at an uploaded release. */
import { defineCommand, printJson, required } from '../../shared/cli.js';
import { clientFromEnv } from '../../server/client.js';

/** The publish command. */
export const publishCommand = defineCommand({
  name: 'publish',
  summary: "Publish an uploaded release to one of its product's channels",
  usage: 'ota-release publish VERSION --product P --channel C [--server URL] [--json]',
  help: `Points the product's channel at the release: devices following it are offered the release
at their next check-in (if it is newer than theirs and made for their device type). A publish
is a one-phase rollout to every device of the channel; for phases that stop themselves on
failures, use \`ota-release rollout create\`.
The token is read from OTA_TOKEN (an ops token); the server from --server or OTA_SERVER.

Options:
  --product P     the release's product, e.g. gateway (required)
  --channel C     channel to publish to, e.g. stable, beta (required)
  --server URL    server base URL (default: OTA_SERVER)
  --json          print the server's answer as JSON

Example:
  OTA_TOKEN=... ota-release publish 2026.11.2 --product gateway --channel stable --server https://ota.example.com`,
  options: { product: { type: 'string' }, channel: { type: 'string' }, server: { type: 'string', short: 's' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ values, positionals }) {
    const product = required(values, 'product');
    const channel = required(values, 'channel');
    const client = clientFromEnv(values);
    const r = await client.publish(product, positionals[0]!, channel);
    if (values.json) printJson(r);
    else process.stdout.write(`published ${r.product} ${r.version} to ${r.channel}${r.previous ? ` (was ${r.previous})` : ''} (rollout ${r.rollout})\n`);
  },
});
