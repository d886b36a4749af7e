/** `ota-release releases` and `ota-release release`: what the server stores. */
import { defineCommand, formatBytes, printJson } from '../../shared/cli.js';
import { clientFromEnv } from '../client.js';
import type { ReleaseView, ChannelView } from '../../server/db/releases.js';
import type { RolloutView } from '../../server/db/rollouts.js';
import { SHOW_OPTIONS, table } from './fleet-format.js';

const common = { server: { type: 'string', short: 's' }, json: { type: 'boolean' } } as const;

/** The releases command. */
export const releasesCommand = defineCommand({
  name: 'releases',
  summary: 'List the releases and channels on the server',
  usage: 'ota-release releases [--product P] [--server URL] [--json]',
  help: `Lists the stored releases (product, version, size, channels pointing at them) and the
channels of each product. The token is read from OTA_TOKEN (ops or technician).

Options:
  --product P     only this product
  --server URL    server base URL (default: OTA_SERVER)
  --json          print the server's answer as JSON`,
  options: { ...common, product: { type: 'string' } },
  async run({ values }) {
    const q = typeof values.product === 'string' ? `?product=${encodeURIComponent(values.product)}` : '';
    const r = await clientFromEnv(values).request<{ releases: ReleaseView[]; channels: ChannelView[] }>('GET', `v1/releases${q}`);
    if (values.json) return printJson(r);
    process.stdout.write(table([['PRODUCT', 'VERSION', 'SIZE', 'UPLOADED', 'CHANNELS'], ...r.releases.map((x) => [x.product, x.version, formatBytes(x.size), x.uploaded, x.channels.join(',')])]));
  },
});

/** The release command. */
export const releaseCommand = defineCommand({
  name: 'release',
  summary: 'Show one release of a product with its rollouts',
  usage: 'ota-release release PRODUCT VERSION [--server URL] [--json]',
  help: `Shows a stored release and every rollout of it with its state and counts.

${SHOW_OPTIONS}`,
  options: { ...common },
  positionals: [2, 2],
  async run({ values, positionals }) {
    const [product, version] = positionals as [string, string];
    const r = await clientFromEnv(values).request<{ release: ReleaseView; rollouts: RolloutView[] }>(
      'GET',
      `v1/products/${encodeURIComponent(product)}/releases/${encodeURIComponent(version)}`,
    );
    if (values.json) return printJson(r);
    const x = r.release;
    process.stdout.write(
      `${x.product} ${x.version}  sha256 ${x.sha256}  ${formatBytes(x.size)}\ncompatible ${x.compatible.join(', ')}  signer ${x.signer}\nuploaded ${x.uploaded}  channels ${x.channels.join(', ') || '-'}\n`,
    );
    for (const ro of r.rollouts) process.stdout.write(`rollout ${ro.id} (${ro.kind}) ${ro.state}: ${ro.totals.success}/${ro.totals.members} ok, ${ro.totals.failure} failed\n`);
  },
});
