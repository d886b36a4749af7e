/** `ota-release devices`, `device`, `tag` and `rollback`: the fleet as ops see and group it. */
import { defineCommand, list, printJson, UsageError } from '../../shared/cli.js';
import { clientFromEnv } from '../client.js';
import type { DeviceView } from '../../server/db/devices.js';
import type { RollbackView } from '../../server/db/rollbacks.js';
import { SHOW_OPTIONS, attrOption, table } from './fleet-format.js';

const common = { server: { type: 'string', short: 's' }, json: { type: 'boolean' } } as const;

/** The devices command. */
export const devicesCommand = defineCommand({
  name: 'devices',
  summary: 'List devices, filtered by product, channel, tags and reported attributes',
  usage: 'ota-release devices [--product P] [--channel C] [--tag T]... [--attr NAME=VALUE]... [--version V] [--json]',
  help: `Lists the fleet: id, product, channel, version, state, last check-in, tags.
Every filter given must hold; --tag and --attr repeat (all of them must match).

Options:
  --product P         devices of this product
  --channel C         devices following this channel
  --tag T             devices carrying tag T (repeatable)
  --attr NAME=VALUE   devices reporting this attribute value, e.g. site=lyon (repeatable)
  --version V         devices whose highest committed release is V
  --server URL        server base URL (default: OTA_SERVER)
  --json              print the server's answer as JSON`,
  options: { ...common, product: { type: 'string' }, channel: { type: 'string' }, tag: { type: 'string', multiple: true }, attr: { type: 'string', multiple: true }, version: { type: 'string' } },
  async run({ values }) {
    const q = new URLSearchParams();
    for (const k of ['product', 'channel', 'version'] as const) if (typeof values[k] === 'string') q.set(k, values[k] as string);
    if (list(values.tag).length > 0) q.set('tag', list(values.tag).join(','));
    const attrs = Object.entries(attrOption(values));
    if (attrs.length > 0) q.set('attr', attrs.map(([k, v]) => `${k}=${v}`).join(','));
    const qs = q.toString();
    const r = await clientFromEnv(values).request<{ devices: DeviceView[] }>('GET', `v1/devices${qs ? `?${qs}` : ''}`);
    if (values.json) return printJson(r);
    process.stdout.write(
      table([
        ['ID', 'PRODUCT', 'CHANNEL', 'VERSION', 'STATE', 'LAST SEEN', 'TAGS'],
        ...r.devices.map((d) => [d.id, d.product ?? '-', d.channel, d.version ?? '-', d.state ?? '-', d.lastSeen ?? 'never', d.tags.join(',')]),
      ]),
    );
    process.stdout.write(`${r.devices.length} device(s)\n`);
  },
});

/** The device command. */
export const deviceCommand = defineCommand({
  name: 'device',
  summary: 'Show one device: attributes, tags, transactions and rollback requests',
  usage: 'ota-release device ID [--server URL] [--json]',
  help: `Shows a device as the server knows it, its recent transactions and the outcome of each
rollback request (delivered, success, failure, or refused with the device's reason).

${SHOW_OPTIONS}`,
  options: { ...common },
  positionals: [1, 1],
  async run({ values, positionals }) {
    type Tx = { id: string; version: string; state: string; outcome: string | null; reason: string | null; updated: string };
    const r = await clientFromEnv(values).request<{ device: DeviceView; transactions: Tx[]; rollbacks: RollbackView[] }>('GET', `v1/devices/${encodeURIComponent(positionals[0]!)}`);
    if (values.json) return printJson(r);
    const d = r.device;
    const attrs = Object.entries(d.attributes).map(([k, v]) => `${k}=${v}`).join(' ');
    process.stdout.write(
      `${d.id}  ${d.product ?? '(product unknown)'} ${d.compatible}  channel ${d.channel}\nversion ${d.version ?? '-'}  slot ${d.slot ?? '-'}  state ${d.state ?? '-'}  last seen ${d.lastSeen ?? 'never'}\n` +
        `tags ${d.tags.join(', ') || '-'}\nattributes ${attrs || '-'}\n`,
    );
    for (const t of r.transactions.slice(0, 10)) process.stdout.write(`tx ${t.id} ${t.version} ${t.state}${t.outcome ? ` ${t.outcome}` : ''}${t.reason ? ` (${t.reason})` : ''} ${t.updated}\n`);
    for (const b of r.rollbacks) {
      const status = b.outcome ?? (b.delivered ? 'delivered' : 'waiting');
      process.stdout.write(`rollback ${b.id} ${status}${b.outcomeReason ? ` (${b.outcomeReason})` : ''} requested ${b.requested} by ${b.requestedBy}\n`);
    }
  },
});

/** The tag command. */
export const tagCommand = defineCommand({
  name: 'tag',
  summary: 'Add or remove tags (groups) on devices',
  usage: 'ota-release tag DEVICE... [--add T]... [--remove T]... [--json]',
  help: `Tags are the groups rollouts target and maintenance windows apply to. All devices change
or none (an unknown id changes nothing).

Options:
  --add T         put tag T on every device named (repeatable)
  --remove T      take tag T off every device named (repeatable)
  --server URL    server base URL (default: OTA_SERVER)
  --json          print the server's answer as JSON

Example:
  ota-release tag evc-0001 evc-0002 --add site-lyon --add in-service`,
  options: { ...common, add: { type: 'string', multiple: true }, remove: { type: 'string', multiple: true } },
  positionals: [1, 10000],
  async run({ values, positionals }) {
    const add = list(values.add);
    const remove = list(values.remove);
    if (add.length + remove.length === 0) throw new UsageError('give --add T or --remove T');
    const r = await clientFromEnv(values).request<{ devices: { id: string; tags: string[] }[] }>('POST', 'v1/devices/tags', { devices: positionals, add, remove });
    if (values.json) return printJson(r);
    for (const d of r.devices) process.stdout.write(`${d.id}: ${d.tags.join(', ') || '(no tags)'}\n`);
  },
});

/** The rollback command. */
export const rollbackCommand = defineCommand({
  name: 'rollback',
  summary: 'Ask a device to roll back to its other slot at its next check-in',
  usage: 'ota-release rollback DEVICE [--note TEXT] [--json]',
  help: `Queues a rollback request, delivered once at the device's next check-in. The device carries
it out only if its other slot holds a committed release; otherwise it refuses, and
\`ota-release device DEVICE\` shows the request as refused with the device's reason.

Options:
  --note TEXT     why (kept with the request)
  --server URL    server base URL (default: OTA_SERVER)
  --json          print the server's answer as JSON`,
  options: { ...common, note: { type: 'string' } },
  positionals: [1, 1],
  async run({ values, positionals }) {
    const body = typeof values.note === 'string' ? { note: values.note } : {};
    const r = await clientFromEnv(values).request<RollbackView>('POST', `v1/devices/${encodeURIComponent(positionals[0]!)}/rollback`, body);
    if (values.json) return printJson(r);
    process.stdout.write(`rollback ${r.id} requested for ${r.device}; delivered at its next check-in\n`);
  },
});
