/**
 * Reads and validates the agent config once: one schema, unknown keys rejected with their
 * section, defaults from defaults.ts, relative paths resolved against the file's directory,
 * and the result deep-frozen so nothing changes it at run time.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { parseStrictJson } from '../../shared/strict-json.js';
import { DEFAULTS, DEFAULT_CONFIG_PATH } from './defaults.js';
import { Section } from './section.js';
import type { AgentConfig, BusyGateConfig, HealthCheckConfig, ServerConfig, SlotConfig, SlotName } from './types.js';
import '../errors.js';

const DAY = 86_400;

function slot(s: Section): SlotConfig {
  s.only(['name', 'kind', 'path', 'mount', 'unmount']);
  const name = s.string('name');
  if (name !== 'A' && name !== 'B') s.invalid('name', `must be "A" or "B" (the names grub/ota-select.cfg knows), not "${name}"`);
  const kind = s.string('kind');
  if (kind !== 'raw' && kind !== 'fs') s.invalid('kind', `must be "raw" (a device or file) or "fs" (a directory), not "${kind}"`);
  const out: { -readonly [K in keyof SlotConfig]: SlotConfig[K] } = { name: name as SlotName, kind, path: s.path('path') };
  if (s.has('mount')) out.mount = s.argv('mount');
  if (s.has('unmount')) out.unmount = s.argv('unmount');
  return out;
}

function healthCheck(s: Section): HealthCheckConfig {
  const kinds = (['systemd', 'http', 'command'] as const).filter((k) => s.has(k));
  if (kinds.length !== 1) s.invalid('', `must have exactly one of "systemd", "http" or "command" (found ${kinds.length})`);
  const name = s.string('name');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) s.invalid('name', 'must be 1-64 letters, digits, ".", "_" or "-" (it becomes the reason health-check:<name>)');
  if (kinds[0] === 'systemd') {
    s.only(['name', 'systemd', 'restarts', 'settleSeconds']);
    const d = DEFAULTS.systemdCheck;
    return { name, systemd: s.string('systemd'), restarts: s.int('restarts', 0, 100, d.restarts), settleSeconds: s.int('settleSeconds', 0, 3600, d.settleSeconds) };
  }
  if (kinds[0] === 'http') {
    s.only(['name', 'http', 'status', 'timeoutSeconds']);
    const url = s.string('http');
    if (!/^https?:\/\//.test(url)) s.invalid('http', `must be an http:// or https:// URL, not "${url}"`);
    const d = DEFAULTS.httpCheck;
    return { name, http: url, status: s.int('status', 100, 599, d.status), timeoutSeconds: s.int('timeoutSeconds', 1, 3600, d.timeoutSeconds) };
  }
  s.only(['name', 'command', 'timeoutSeconds']);
  return { name, command: s.argv('command'), timeoutSeconds: s.int('timeoutSeconds', 1, DAY, DEFAULTS.commandCheck.timeoutSeconds) };
}

function server(s: Section): ServerConfig {
  s.only(['url', 'token', 'serverKey', 'pollIntervalSeconds', 'stallTimeoutSeconds', 'downloadRetries', 'pollJitter']);
  const d = DEFAULTS.server;
  const out: { -readonly [K in keyof ServerConfig]: ServerConfig[K] } = {
    // 1 s is for tests and demos; a fleet sets minutes or hours (the server may ask for less).
    pollIntervalSeconds: s.int('pollIntervalSeconds', 1, 7 * DAY, d.pollIntervalSeconds),
    stallTimeoutSeconds: s.int('stallTimeoutSeconds', 1, 3600, d.stallTimeoutSeconds),
    downloadRetries: s.int('downloadRetries', 0, 1_000_000, d.downloadRetries),
    pollJitter: s.number('pollJitter', 0, 0.5, d.pollJitter),
  };
  // The URL may come from the enrollment file instead (ota-agent enroll stores it).
  const url = s.optionalString('url');
  if (url !== undefined) {
    if (!/^https?:\/\//.test(url)) s.invalid('url', `must be an http:// or https:// URL, not "${url}"`);
    out.url = url.replace(/\/+$/, '');
  }
  const token = s.optionalString('token');
  if (token !== undefined) out.token = token;
  if (s.has('serverKey')) out.serverKey = s.path('serverKey');
  return out;
}

function busyGate(s: Section): BusyGateConfig {
  s.only(['command', 'timeoutSeconds', 'maxWaitSeconds', 'recheckSeconds']);
  const d = DEFAULTS.busyGate;
  return {
    command: s.argv('command'),
    timeoutSeconds: s.int('timeoutSeconds', 1, 3600, d.timeoutSeconds),
    maxWaitSeconds: s.int('maxWaitSeconds', 0, 7 * DAY, d.maxWaitSeconds),
    recheckSeconds: s.int('recheckSeconds', 1, DAY, d.recheckSeconds),
  };
}

function textfile(top: Section): string {
  const p = top.path('metricsTextfile');
  // node-exporter's textfile collector reads *.prom files only.
  if (!p.endsWith('.prom')) top.invalid('metricsTextfile', `must end in ".prom" (node-exporter reads only those), not "${p}"`);
  return p;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Validates a parsed config object; `file` names it in errors and anchors relative paths. */
export function parseConfig(raw: unknown, file: string): AgentConfig {
  const top = Section.of(raw, '', file, dirname(resolve(file)));
  top.only([
    'device', 'slots', 'boot', 'cmdlinePath', 'rebootCommand', 'rebootTimeoutSeconds', 'trustedKeys',
    'dataDir', 'healthChecks', 'healthDeadlineSeconds', 'maxTransitions', 'checkpointBytes', 'tools', 'server', 'busyGate',
    'metricsTextfile',
  ]);
  if (!top.has('device')) top.invalid('device', 'is required');
  const device = top.section('device');
  device.only(['id', 'compatible', 'product', 'attributes']);
  const product = device.optionalString('product');
  if (product !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(product)) device.invalid('product', `must be a product name like "gateway", not "${product}"`);
  if (!top.has('slots')) top.invalid('slots', 'is required');
  const slots = top.sections('slots').map(slot);
  if (slots.length !== 2 || slots[0]!.name === slots[1]!.name) top.invalid('slots', 'must list exactly two slots, one named "A" and one named "B"');
  if (slots[0]!.kind !== slots[1]!.kind) top.invalid('slots', 'must both be of the same kind ("raw" or "fs"): one bundle has to fit either slot');
  slots.sort((a, b) => a.name.localeCompare(b.name));
  const boot = top.section('boot');
  boot.only(['grubenv']);
  const tools = top.section('tools');
  tools.only(['systemctl', 'grubEditenv']);
  const checks = top.sections('healthChecks').map(healthCheck);
  const names = new Set<string>();
  for (const c of checks) {
    if (names.has(c.name)) top.invalid('healthChecks', `has two checks named "${c.name}"`);
    names.add(c.name);
  }
  const config: AgentConfig = {
    source: file,
    device: { id: device.string('id'), compatible: device.string('compatible'), ...(product !== undefined ? { product } : {}), attributes: device.stringMap('attributes', 24) },
    slots,
    boot: { grubenv: boot.path('grubenv', DEFAULTS.boot.grubenv) },
    cmdlinePath: top.path('cmdlinePath', DEFAULTS.cmdlinePath),
    rebootCommand: top.argv('rebootCommand', DEFAULTS.rebootCommand),
    rebootTimeoutSeconds: top.int('rebootTimeoutSeconds', 1, DAY, DEFAULTS.rebootTimeoutSeconds),
    trustedKeys: top.paths('trustedKeys', 1),
    dataDir: top.path('dataDir', DEFAULTS.dataDir),
    healthChecks: checks,
    healthDeadlineSeconds: top.int('healthDeadlineSeconds', 1, DAY, DEFAULTS.healthDeadlineSeconds),
    maxTransitions: top.int('maxTransitions', 10, 10_000, DEFAULTS.maxTransitions),
    checkpointBytes: top.int('checkpointBytes', 64 * 1024, 2 ** 40, DEFAULTS.checkpointBytes),
    tools: {
      systemctl: tools.string('systemctl', DEFAULTS.tools.systemctl),
      grubEditenv: tools.string('grubEditenv', DEFAULTS.tools.grubEditenv),
    },
    ...(top.has('server') ? { server: server(top.section('server')) } : {}),
    ...(top.has('busyGate') ? { busyGate: busyGate(top.section('busyGate')) } : {}),
    ...(top.has('metricsTextfile') ? { metricsTextfile: textfile(top) } : {}),
  };
  return deepFreeze(config);
}

/** The config path to use: --config, else OTA_AGENT_CONFIG, else the default. */
export function configPath(option?: string): string {
  return option || process.env.OTA_AGENT_CONFIG || DEFAULT_CONFIG_PATH;
}

/** Reads, validates and freezes the config file. */
export async function loadConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new OtaError('CONFIG_UNREADABLE', `config ${path}: cannot be read (${errorMessage(cause)}); pass --config or set OTA_AGENT_CONFIG`, { cause });
  }
  let raw: unknown;
  try {
    raw = parseStrictJson(text, `config ${path}`);
  } catch (cause) {
    throw new OtaError('CONFIG_UNREADABLE', `${errorMessage(cause)}`, { cause });
  }
  return parseConfig(raw, path);
}
