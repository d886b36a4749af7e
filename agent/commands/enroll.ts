/** `ota-agent enroll`: register this device with the update server and store its token and key. */
import { UsageError, defineCommand } from '../../shared/cli.js';
import { enroll } from '../client/enroll.js';
import { configPath, loadConfig } from '../config/load.js';
import { downloadSettings } from '../download/settings.js';
import { CONFIG_HELP, configOption, log } from './common.js';

/** The enroll command. */
export const enrollCommand = defineCommand({
  name: 'enroll',
  summary: 'Register this device with the update server; store its own token and the server key',
  usage: 'ota-agent enroll --server URL --token TOKEN [--channel C] [--replace] [--config PATH]',
  help: `Sends device.id and device.compatible from the config to POST URL/v1/devices/enroll with
an enrollment token, and stores what the server answers (the server URL, the device's own
token, the server's public key, the channel) in <dataDir>/server.json (mode 0600, replaced
power-safely). The daemon and 'ota-agent check' use it; keys set in the config's server
section (url, token, serverKey) win over it. With server.serverKey configured, the server
must hold that key, or nothing is stored (SERVER_KEY_MISMATCH).

Options:
  --server URL     the update server, e.g. https://ota.example.com
  --token TOKEN    an enrollment token (ota-server token create --role enroll); or set
                   OTA_ENROLL_TOKEN, which keeps it out of the process list
  --channel C      the channel to follow (default: the server's, "stable")
  --replace        re-enroll an id the server knows already (needs an ops token; the old
                   device token is revoked)
${CONFIG_HELP}

Exit 1 with SERVER_AUTH_FAILED (token refused), ENROLL_DEVICE_EXISTS (id enrolled already),
SERVER_UNREACHABLE (no connection).

Example:
  ota-agent enroll --server https://ota.example.com --token "$(cat /boot/enroll-token)"`,
  options: { ...configOption, server: { type: 'string' }, token: { type: 'string' }, channel: { type: 'string' }, replace: { type: 'boolean' } },
  async run({ values }) {
    const server = typeof values.server === 'string' ? values.server : '';
    if (!/^https?:\/\/[^/]/.test(server)) throw new UsageError(`option --server must be an http:// or https:// URL${server ? `, not "${server}"` : ''}`);
    const token = typeof values.token === 'string' && values.token !== '' ? values.token : process.env.OTA_ENROLL_TOKEN;
    if (!token) throw new UsageError('option --token (or OTA_ENROLL_TOKEN) is required');
    const config = await loadConfig(configPath(typeof values.config === 'string' ? values.config : undefined));
    const r = await enroll(config, {
      server,
      token,
      ...(typeof values.channel === 'string' ? { channel: values.channel } : {}),
      replace: values.replace === true,
      timeoutMs: downloadSettings(config).stallMs,
    });
    const e = r.enrollment;
    if (config.server?.url && config.server.url !== e.url) log(`note: the config's server.url (${config.server.url}) wins over ${e.url} for check-ins`);
    process.stdout.write(`enrolled ${e.id} (${e.compatible}) at ${e.url}, channel ${e.channel}; server key ${r.fingerprint}; stored in ${r.path}\n`);
  },
});
