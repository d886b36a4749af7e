/**
 * The agent's configuration schema as one declarative table: every key of the config file,
 * with its kind, range, default and the words docs/AGENT.md shows for it. load.ts reads a file
 * by walking this table (a key not in it is an error naming the key and its section), the
 * docs' table lists the same rows, and test/agent/config.test.ts iterates it.
 *
 * Keys are dotted paths as the docs name them: `device.id`; items of a list are `slots[].name`.
 * To add a key: add its row here (and to AgentConfig in types.ts), then its row to docs/AGENT.md.
 */

/** Where the config is read from when neither --config nor OTA_AGENT_CONFIG says otherwise. */
export const DEFAULT_CONFIG_PATH = '/etc/otaab/agent.json';

/** The kinds of health check; each check has exactly one of these keys. */
export const CHECK_KINDS = ['systemd', 'http', 'command'] as const;
/** One kind of health check. */
export type CheckKind = (typeof CHECK_KINDS)[number];

const DAY = 86_400;

/** One key of the config. */
export interface Field {
  /**
   * How the value is read: `string` (non-empty), `url` (http or https), `baseUrl` (a URL whose
   * trailing slashes are dropped), `path` (relative to the config file's directory), `paths`,
   * `argv` (a command as an array), `int`, `number` (a finite number in a range), `bool`, `stringMap`
   * (an object of short strings, at most `max` entries), `enum`, `section` (an object), `list`
   * (of objects).
   */
  readonly kind: 'string' | 'url' | 'baseUrl' | 'path' | 'paths' | 'argv' | 'int' | 'number' | 'bool' | 'stringMap' | 'enum' | 'section' | 'list';
  /** Absent is an error. */
  readonly required?: boolean;
  /** A section left out stays out of the result (otherwise it is read with its defaults). */
  readonly optional?: boolean;
  /** The value when the key is absent; without one, an absent optional key stays absent. */
  readonly default?: string | number | boolean | readonly string[];
  /** int: the range; paths: the fewest items. */
  readonly min?: number;
  readonly max?: number;
  /** enum: the values allowed. */
  readonly values?: readonly string[];
  /** string and path: the pattern a value must match. */
  readonly pattern?: RegExp;
  /** enum and pattern: what the value means, said when it is wrong. */
  readonly why?: string;
  /** In a health check: the kinds of check that take this key (absent: all). */
  readonly checks?: readonly CheckKind[];
  /** In a health check: range and default by kind of check, where they differ. */
  readonly perCheck?: Partial<Record<CheckKind, { readonly max: number; readonly default: number }>>;
  /** docs/AGENT.md's "type" column. */
  readonly type: string;
  /** docs/AGENT.md's "default" column, where the default alone does not say it. */
  readonly defaultText?: string;
  /** docs/AGENT.md's "meaning" column. */
  readonly doc: string;
}

/** Every key of the agent config, in the order docs/AGENT.md lists them. */
export const FIELDS = {
  device: { kind: 'section', required: true, type: 'object', doc: 'who the device is' },
  'device.id': { kind: 'string', required: true, type: 'string', doc: 'the device\'s name (server check-ins, reports)' },
  'device.compatible': { kind: 'string', required: true, type: 'string', doc: 'the device type; a bundle must list it in its `compatible`' },
  'device.product': {
    kind: 'string', pattern: /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, why: 'must be a product name like "gateway"', type: 'string',
    doc: 'the product the device runs (a manifest\'s `product`), sent at enrollment: the server then offers it that product\'s releases only; without it the server infers none and offers a release of any product made for `device.compatible`',
  },
  'device.attributes': {
    kind: 'stringMap', max: 24, type: 'object of strings (≤ 24)', defaultText: '`{}`',
    doc: 'what the device reports of itself at every check-in for grouping (e.g. `{"hardware": "rev-c", "site": "lyon"}`); the agent adds `agentVersion` and `slot.A`/`slot.B` (the version each slot holds)',
  },
  'device.factoryVersion': {
    kind: 'string', pattern: /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, why: 'must be a release version like "1.0.0"', type: 'version', defaultText: 'none',
    doc: 'the release version the factory wrote into both slots: the agent reports it as its version until it commits a release, and for a slot it never installed (`slot.A`/`slot.B`), so after a rollback to the factory system the server shows this version, not none',
  },
  slots: { kind: 'list', required: true, type: 'array of 2', doc: 'one slot named `A` and one named `B`, both of the same kind' },
  'slots[].name': { kind: 'enum', required: true, values: ['A', 'B'], why: 'the names grub/ota-select.cfg knows', type: '`"A"` \\| `"B"`', doc: 'the names `grub/ota-select.cfg` knows' },
  'slots[].kind': { kind: 'enum', required: true, values: ['raw', 'fs'], why: 'raw: a device or file; fs: a directory', type: '`"raw"` \\| `"fs"`', doc: '`raw`: a block device or image file; `fs`: a directory holding a root file system' },
  'slots[].path': { kind: 'path', required: true, type: 'path', doc: 'the device or file (`raw`), the directory (`fs`)' },
  'slots[].mount': { kind: 'argv', type: 'argv', defaultText: 'none', doc: 'command run before the slot is used' },
  'slots[].unmount': { kind: 'argv', type: 'argv', defaultText: 'none', doc: 'command run after the slot was used' },
  boot: { kind: 'section', type: 'object', defaultText: 'all defaults', doc: 'the boot loader' },
  'boot.grubenv': { kind: 'path', default: '/boot/grub/grubenv', type: 'path', doc: 'the GRUB environment block the agent edits' },
  'boot.bootloader': {
    kind: 'enum', default: 'grub', values: ['grub', 'uboot', 'rpi-tryboot'], why: 'the bootloader backend', type: '`"grub"` \\| `"uboot"` \\| `"rpi-tryboot"`',
    doc: 'the bootloader backend, see [docs/BOOTLOADERS.md](BOOTLOADERS.md)',
  },
  'boot.fwEnvConfig': { kind: 'path', default: '/etc/otaab/fw_env.config', type: 'path', doc: 'uboot: libubootenv config of the primary env copy (`otaab.env`)' },
  'boot.fwEnvConfigBackup': { kind: 'path', default: '/etc/otaab/fw_env.backup.config', type: 'path', doc: 'uboot: libubootenv config of the second env copy (`otaab.bak`); must differ from `boot.fwEnvConfig`' },
  'boot.autoboot': { kind: 'path', default: '/boot/firmware/autoboot.txt', type: 'path', doc: 'rpi-tryboot: `autoboot.txt` on the mounted FAT boot partition' },
  'boot.partitionA': { kind: 'int', min: 1, max: 63, default: 2, type: '1 … 63', doc: 'rpi-tryboot: slot A\'s boot partition number (the firmware\'s `boot_partition`)' },
  'boot.partitionB': { kind: 'int', min: 1, max: 63, default: 3, type: '1 … 63', doc: 'rpi-tryboot: slot B\'s boot partition number; must differ from `boot.partitionA`' },
  'boot.deviceTree': { kind: 'path', default: '/proc/device-tree/chosen/bootloader', type: 'path', doc: 'rpi-tryboot: where the firmware\'s `partition` and `tryboot` (big-endian u32) are read' },
  'boot.trybootCommand': { kind: 'argv', default: ['reboot', '0 tryboot'], type: 'argv', doc: 'rpi-tryboot: the reboot that boots the `[tryboot]` partition once' },
  cmdlinePath: { kind: 'path', default: '/proc/cmdline', type: 'path', doc: 'where `ota.slot=X` is read from' },
  rebootCommand: { kind: 'argv', default: ['systemctl', 'reboot'], type: 'argv', doc: 'how the agent reboots the device' },
  rebootTimeoutSeconds: { kind: 'int', min: 1, max: DAY, default: 600, type: '1 … 86400', doc: 'how long the daemon waits for the reboot it asked for before failing with `REBOOT_TIMEOUT`' },
  trustedKeys: { kind: 'paths', required: true, min: 1, type: 'array of paths (≥ 1)', doc: 'OpenPGP public keys of the release signers' },
  dataDir: { kind: 'path', default: '/var/lib/otaab', type: 'path', doc: 'holds the store `agent.db`' },
  healthChecks: { kind: 'list', type: 'array', defaultText: '`[]`', doc: 'checks run after each boot, see [Health checks](#health-checks)' },
  'healthChecks[].name': { kind: 'string', required: true, pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, why: 'must be 1-64 letters, digits, ".", "_" or "-" (it becomes the reason health-check:<name>)', type: '1–64 of `[A-Za-z0-9._-]`', doc: 'becomes the reason `health-check:<name>`' },
  'healthChecks[].systemd': { kind: 'string', required: true, checks: ['systemd'], type: 'unit name', defaultText: '—', doc: 'the unit must be active' },
  'healthChecks[].restarts': { kind: 'int', min: 0, max: 100, default: 2, checks: ['systemd'], type: '0 … 100', doc: 'systemd: restarts tried before it counts as failed' },
  'healthChecks[].settleSeconds': { kind: 'int', min: 0, max: 3600, default: 5, checks: ['systemd'], type: '0 … 3600', doc: 'systemd: wait after each restart' },
  'healthChecks[].http': { kind: 'url', required: true, checks: ['http'], type: 'http(s) URL', defaultText: '—', doc: 'the URL must answer with `status`' },
  'healthChecks[].status': { kind: 'int', min: 100, max: 599, default: 200, checks: ['http'], type: '100 … 599', doc: 'http: the expected status' },
  'healthChecks[].timeoutSeconds': {
    kind: 'int', min: 1, checks: ['http', 'command'], perCheck: { http: { max: 3600, default: 10 }, command: { max: DAY, default: 60 } },
    type: '1 … 3600 (http), 1 … 86400 (command)', defaultText: '`10` (http), `60` (command)', doc: 'one request / the command\'s own timeout',
  },
  'healthChecks[].command': { kind: 'argv', required: true, checks: ['command'], type: 'argv', defaultText: '—', doc: 'the command must exit 0' },
  healthDeadlineSeconds: { kind: 'int', min: 1, max: DAY, default: 300, type: '1 … 86400', doc: 'all checks of one boot must be done within this' },
  maxTransitions: { kind: 'int', min: 10, max: 10_000, default: 50, type: '10 … 10000', doc: 'states a transaction may enter before it is stopped with reason `loop` (rolling back gets twice that)' },
  checkpointBytes: {
    kind: 'int', min: 64 * 1024, max: 2 ** 40, default: 64 * 1024 * 1024, type: '64 KiB … 1 TiB', defaultText: '`67108864` (64 MiB)',
    doc: 'slot bytes between two fsyncs that make a download\'s progress durable (and resumable)',
  },
  tools: { kind: 'section', type: 'object', defaultText: 'all defaults', doc: 'external programs the agent runs' },
  'tools.systemctl': { kind: 'string', default: 'systemctl', type: 'program', doc: 'the systemctl used by systemd health checks' },
  'tools.grubEditenv': { kind: 'string', default: 'grub-editenv', type: 'program', doc: 'creates `grubenv`, and reads and edits one not in the plain form (the agent edits the plain form itself, into the same bytes)' },
  'tools.fwPrintenv': { kind: 'string', default: 'fw_printenv', type: 'program', doc: 'uboot: libubootenv\'s reader, the only program that reads the U-Boot env' },
  'tools.fwSetenv': { kind: 'string', default: 'fw_setenv', type: 'program', doc: 'uboot: libubootenv\'s writer, the only program that writes the U-Boot env' },
  server: { kind: 'section', optional: true, type: 'object', defaultText: 'none (no server)', doc: 'the update server, for the daemon\'s check-in loop' },
  'server.url': { kind: 'baseUrl', type: 'http(s) URL', defaultText: 'from enrollment', doc: 'the update server' },
  'server.token': { kind: 'string', type: 'string', defaultText: 'from enrollment', doc: 'the device\'s own token' },
  'server.serverKey': { kind: 'path', type: 'path', defaultText: 'from enrollment', doc: 'the server\'s public key (check-in answers are signed with it); also checked at enrollment' },
  // 1 s is for tests and demos; a fleet sets minutes or hours (the server may ask for less).
  'server.pollIntervalSeconds': { kind: 'int', min: 1, max: 7 * DAY, default: 3600, type: '1 … 604800', doc: 'the longest time between check-ins; the server may ask for less' },
  'server.stallTimeoutSeconds': { kind: 'int', min: 1, max: 3600, default: 60, type: '1 … 3600', doc: 'a download (or a server request) with no byte for this long counts as a network error' },
  'server.downloadRetries': {
    kind: 'int', min: 0, max: 1_000_000, default: 1000, type: '0 … 1000000',
    doc: 'network retries one transaction\'s download may use, across restarts, before it fails with `download:DOWNLOAD_RETRIES_EXHAUSTED`',
  },
  'server.installGiveUpSeconds': {
    kind: 'int', min: 1, max: 7 * DAY, default: 300, type: '1 … 604800',
    doc: 'a technician\'s `ota-agent install URL` that gets no byte for this long, retries included, fails with `DOWNLOAD_GAVE_UP` (`--give-up-after` overrides it); the daemon never gives up this way',
  },
  'server.pollJitter': {
    kind: 'number', min: 0, max: 0.5, default: 0.2, type: '0 … 0.5',
    doc: 'each wait between check-ins is the interval times a random factor in [1 − j, 1 + j] (±20 % by default), so a fleet that booted together does not check in in lockstep',
  },
  busyGate: {
    kind: 'section', optional: true, type: 'object', defaultText: 'none (never busy)',
    doc: 'a command asked before arming and before rebooting: exit 0 free, 75 (EX_TEMPFAIL) busy, anything else counts as busy and is logged',
  },
  'busyGate.command': { kind: 'argv', required: true, type: 'argv', doc: 'asked before arming the new slot and before rebooting: exit 0 = free, exit **75** (EX_TEMPFAIL) = busy, do not reboot now (a charge in progress); any other exit or no answer in time counts as busy and is logged' },
  'busyGate.timeoutSeconds': { kind: 'int', min: 1, max: 3600, default: 30, type: '1 … 3600', doc: 'how long one answer of the busy command may take' },
  'busyGate.maxWaitSeconds': { kind: 'int', min: 0, max: 7 * DAY, default: 3600, type: '0 … 604800', doc: 'the longest wait from the first "busy" of a transaction; then the agent goes on (and reports `held:busy-timeout`)' },
  'busyGate.recheckSeconds': { kind: 'int', min: 1, max: DAY, default: 60, type: '1 … 86400', doc: 'how often the agent asks again while busy' },
  metricsTextfile: {
    kind: 'path', pattern: /\.prom$/, why: 'must end in ".prom" (node-exporter reads only those)', type: 'path ending in `.prom`',
    doc: 'node-exporter textfile the agent rewrites after every check (temp file + rename): state, slots, committed version, last check-in, last outcome; see [Metrics textfile](#metrics-textfile)',
  },
  delta: { kind: 'section', type: 'object', defaultText: 'all defaults', doc: 'delta installs of indexed images into raw slots, see [DELTA.md](DELTA.md)' },
  'delta.enabled': {
    kind: 'bool', default: true, type: 'boolean',
    doc: 'install an indexed image into a raw slot by delta: chunks the running slot has are taken from it, the rest fetched with Range requests ([DELTA.md](DELTA.md))',
  },
  'delta.maxRequests': { kind: 'int', min: 1, max: 1_000_000, default: 4096, type: '1 … 1000000', doc: 'the most range requests for one image\'s missing chunks; past it the closest ranges are merged' },
  'delta.mergeGapBytes': {
    kind: 'int', min: 0, max: 64 * 1024 * 1024, default: 0, type: '0 … 64 MiB',
    doc: 'missing chunks at most this many bundle bytes apart share one request (the bytes between are fetched and dropped)',
  },
} as const satisfies Record<string, Field>;

/** A key of the config, as the docs name it. */
export type FieldKey = keyof typeof FIELDS;

/** The keys directly inside `parent` ('' for the top level, `slots[]` for a slot), with their fields. */
export function childFields(parent: string): [name: string, field: Field][] {
  const prefix = parent === '' ? '' : `${parent}.`;
  return Object.entries(FIELDS as Record<string, Field>)
    .filter(([key]) => key.startsWith(prefix) && !/[.[]/.test(key.slice(prefix.length)))
    .map(([key, f]) => [key.slice(prefix.length), f]);
}

/** The text docs/AGENT.md shows in the "default" column for `f`. */
export function defaultText(f: Field): string {
  if (f.defaultText !== undefined) return f.defaultText;
  if (f.required) return '*required*';
  if (f.default === undefined) return 'none';
  return `\`${Array.isArray(f.default) ? JSON.stringify(f.default).replace(/,/g, ', ') : String(f.default)}\``;
}

/** The server section's defaults, for a device whose config has no server section (it may still be enrolled). */
export const SERVER_DEFAULTS = Object.freeze({
  pollIntervalSeconds: FIELDS['server.pollIntervalSeconds'].default,
  stallTimeoutSeconds: FIELDS['server.stallTimeoutSeconds'].default,
  downloadRetries: FIELDS['server.downloadRetries'].default,
  installGiveUpSeconds: FIELDS['server.installGiveUpSeconds'].default,
  pollJitter: FIELDS['server.pollJitter'].default,
});
