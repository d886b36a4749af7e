/** `ota-release upload`: stream a bundle to the server, then optionally publish it. */
import { defineCommand, formatBytes, printJson, progressBar } from '../../shared/cli.js';
import { clientFromEnv } from '../../server/client.js';

/** The upload command. */
export const uploadCommand = defineCommand({
  name: 'upload',
  summary: 'Upload a signed bundle to the server (and publish it with --channel)',
  usage: 'ota-release upload BUNDLE [--server URL] [--channel C] [--json]',
  help: `Streams the bundle to the server, which verifies its signature and every payload while it
arrives and stores it only when whole and authentic. A version already on the server is
refused (RELEASE_EXISTS): versions are immutable. With --channel the release is then published.
The token is read from OTA_TOKEN (an ops token); the server from --server or OTA_SERVER.
Non-interactive; a progress bar is drawn only when stderr is a terminal.

Options:
  --server URL    server base URL (default: OTA_SERVER)
  --channel C     publish the release to this channel after the upload
  --json          print the server's answers as JSON

Example (a CI job):
  export OTA_SERVER=https://ota.example.com OTA_TOKEN=$OTA_CI_TOKEN
  ota-release upload gateway-2026.11.2.otab --channel beta`,
  options: { server: { type: 'string', short: 's' }, channel: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ values, positionals }) {
    const client = clientFromEnv(values);
    const bar = progressBar('upload');
    let uploaded;
    try {
      uploaded = await client.upload(positionals[0]!, (sent, total) => bar.update(sent, total));
    } finally {
      bar.end();
    }
    const channel = typeof values.channel === 'string' && values.channel !== '' ? values.channel : undefined;
    const published = channel ? await client.publish(uploaded.product, uploaded.version, channel) : undefined;
    if (values.json) {
      printJson(published ? { ...uploaded, published } : uploaded);
      return;
    }
    process.stdout.write(`uploaded ${uploaded.product} ${uploaded.version}  sha256 ${uploaded.sha256}  ${formatBytes(uploaded.size)}\n`);
    if (published) process.stdout.write(`published ${published.product} ${published.version} to ${published.channel}${published.previous ? ` (was ${published.previous})` : ''}\n`);
  },
});
