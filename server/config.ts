/**
 * The server's configuration: one schema, defaults in one object, three sources (a JSON file,
 * OTA_SERVER_* environment variables, command-line flags, later ones winning), validated once
 * and frozen. Unknown keys are errors that name the key and where it came from.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../shared/cli.js';
import { OtaError, errorMessage } from '../shared/errors.js';
import { parseStrictJson } from '../shared/strict-json.js';
import { parseListen } from './metrics/listener.js';

/** Everything the server reads at start; frozen after validation. */
export interface ServerConfig {
  /** Data directory: server.db, bundles/, tmp/, server-key.asc. */
  readonly data: string;
  readonly host: string;
  /** TCP port; 0 picks a free one (the actual port is printed). */
  readonly port: number;
  /** Public key files whose holders may sign releases. */
  readonly releaseKeys: readonly string[];
  /** Base URL devices reach the server at, for bundle URLs; null: taken from each request's Host. */
  readonly publicUrl: string | null;
  /** Largest bundle upload accepted, in bytes. */
  readonly maxBundleSize: number;
  /** Largest JSON request body accepted, in bytes. */
  readonly maxJsonBody: number;
  /** Seconds a signed check-in answer stays valid. */
  readonly answerTtl: number;
  /** Seconds between check-ins the server asks devices for. */
  readonly pollInterval: number;
  readonly logLevel: LogLevel;
  /** Bearer token Prometheus sends to scrape GET /metrics; null: not on the API port. */
  readonly metricsToken: string | null;
  /** `host:port` serving GET /metrics on its own; null: none. */
  readonly metricsListen: string | null;
  /** Prometheus instrumentation on (default) or off: no request and store timing, no /metrics. */
  readonly metrics: boolean;
  /** PEM certificate chain to serve HTTPS with; null: plain HTTP (e.g. behind a reverse proxy). */
  readonly tlsCert: string | null;
  /** PEM private key of `tlsCert`. */
  readonly tlsKey: string | null;
  /** Where bundles are stored: `local` (the data directory's bundles/) or `s3` (object storage). */
  readonly storage: 'local' | 's3';
  /** S3 endpoint URL (MinIO, Garage, ...); null: AWS's endpoint for `s3Region`. */
  readonly s3Endpoint: string | null;
  readonly s3Region: string;
  /** Bucket holding the bundles (required with storage `s3`). */
  readonly s3Bucket: string | null;
  /** Key prefix inside the bucket: '' or ending in '/'. */
  readonly s3Prefix: string;
  /** Path-style requests (endpoint/bucket/key) instead of virtual-hosted (bucket.endpoint/key). */
  readonly s3PathStyle: boolean;
  /** Access key; null (with s3SecretAccessKey null): AWS_ACCESS_KEY_ID etc. or the SDK's default chain. */
  readonly s3AccessKeyId: string | null;
  readonly s3SecretAccessKey: string | null;
  /** How devices download: `server` (through the server, Range), `presigned` (redirect to a presigned URL), `public` (redirect to bundlePublicUrl). */
  readonly bundleDownload: 'server' | 'presigned' | 'public';
  /** Base URL (a CDN or static origin) serving each bundle at `<base>/<sha256>`, for bundleDownload `public`. */
  readonly bundlePublicUrl: string | null;
  /** Seconds a presigned download URL stays valid. */
  readonly presignTtl: number;
  /** PostgreSQL connection URL (postgres://user:pass@host:port/db); null: SQLite in the data directory. */
  readonly databaseUrl: string | null;
}

/** Levels of the server log (pino's). */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The defaults, in one place. */
export const DEFAULTS: ServerConfig = Object.freeze({
  data: '/var/lib/otaab-server',
  host: '0.0.0.0',
  port: 8080,
  releaseKeys: Object.freeze([]),
  publicUrl: null,
  maxBundleSize: 8 * 1024 ** 3,
  maxJsonBody: 256 * 1024,
  answerTtl: 300,
  pollInterval: 300,
  logLevel: 'info',
  metricsToken: null,
  metricsListen: null,
  metrics: true,
  tlsCert: null,
  tlsKey: null,
  storage: 'local',
  s3Endpoint: null,
  s3Region: 'us-east-1',
  s3Bucket: null,
  s3Prefix: '',
  s3PathStyle: false,
  s3AccessKeyId: null,
  s3SecretAccessKey: null,
  bundleDownload: 'server',
  bundlePublicUrl: null,
  presignTtl: 900,
  databaseUrl: null,
});

type Key = keyof ServerConfig;

interface Field {
  /** Environment variable that sets it. */
  env: string;
  /** Command-line flag that sets it. */
  flag: string;
  /** Turns a raw value (JSON from the file, text from env or flags) into a valid one, or says why not. */
  parse(raw: unknown, fromText: boolean, base: string): { ok: true; value: unknown } | { ok: false; why: string };
}

const ok = (value: unknown) => ({ ok: true as const, value });
const no = (why: string) => ({ ok: false as const, why });

function int(min: number, max: number): Field['parse'] {
  return (raw, fromText) => {
    const n = fromText && typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= min && n <= max ? ok(n) : no(`must be a whole number from ${min} to ${max}`);
  };
}

function oneOf(values: readonly string[]): Field['parse'] {
  return (raw) => (typeof raw === 'string' && values.includes(raw) ? ok(raw) : no(`must be one of ${values.join(', ')}`));
}

function optionalText(pattern: RegExp, why: string): Field['parse'] {
  return (raw) => (raw === null || (typeof raw === 'string' && pattern.test(raw)) ? ok(raw) : no(why));
}

const httpUrl: Field['parse'] = (raw) => {
  if (raw === null) return ok(null);
  if (typeof raw !== 'string' || !/^https?:\/\/[^/]+(\/.*)?$/.test(raw)) return no('must be an http:// or https:// URL');
  return ok(raw.replace(/\/+$/, ''));
};

const bool: Field['parse'] = (raw, fromText) => {
  const v = fromText && typeof raw === 'string' ? ({ true: true, false: false, '1': true, '0': false } as Record<string, boolean>)[raw.trim()] : raw;
  return typeof v === 'boolean' ? ok(v) : no('must be true or false');
};

const path: Field['parse'] = (raw, _t, base) => (typeof raw === 'string' && raw !== '' ? ok(resolve(base, raw)) : no('must be a path'));

const optionalPath: Field['parse'] = (raw, t, base) => (raw === null ? ok(null) : path(raw, t, base));

const paths: Field['parse'] = (raw, fromText, base) => {
  // In the environment several key files are separated by commas.
  const list = fromText && typeof raw === 'string' ? raw.split(',').filter((s) => s !== '') : raw;
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && p !== '')) return no('must be a list of key file paths');
  return ok(Object.freeze(list.map((p: string) => resolve(base, p))));
};

/** The schema: every key, its environment variable and flag, and its check. */
export const FIELDS: Readonly<Record<Key, Field>> = {
  data: { env: 'OTA_SERVER_DATA', flag: 'data', parse: path },
  host: { env: 'OTA_SERVER_HOST', flag: 'host', parse: (raw) => (typeof raw === 'string' && raw !== '' ? ok(raw) : no('must be a host name or address')) },
  port: { env: 'OTA_SERVER_PORT', flag: 'port', parse: int(0, 65535) },
  releaseKeys: { env: 'OTA_SERVER_RELEASE_KEYS', flag: 'release-key', parse: paths },
  publicUrl: {
    env: 'OTA_SERVER_PUBLIC_URL',
    flag: 'public-url',
    parse: (raw) => {
      if (raw === null) return ok(null);
      if (typeof raw !== 'string' || !/^https?:\/\/[^/]+(\/.*)?$/.test(raw)) return no('must be an http:// or https:// URL such as https://ota.example.com');
      return ok(raw.replace(/\/+$/, ''));
    },
  },
  maxBundleSize: { env: 'OTA_SERVER_MAX_BUNDLE_SIZE', flag: 'max-bundle-size', parse: int(1024, Number.MAX_SAFE_INTEGER) },
  maxJsonBody: { env: 'OTA_SERVER_MAX_JSON_BODY', flag: 'max-json-body', parse: int(1024, 64 * 1024 * 1024) },
  answerTtl: { env: 'OTA_SERVER_ANSWER_TTL', flag: 'answer-ttl', parse: int(10, 7 * 24 * 3600) },
  pollInterval: { env: 'OTA_SERVER_POLL_INTERVAL', flag: 'poll-interval', parse: int(5, 7 * 24 * 3600) },
  logLevel: {
    env: 'OTA_SERVER_LOG_LEVEL',
    flag: 'log-level',
    parse: (raw) => (LOG_LEVELS.includes(raw as LogLevel) ? ok(raw) : no(`must be one of ${LOG_LEVELS.join(', ')}`)),
  },
  metricsToken: {
    env: 'OTA_SERVER_METRICS_TOKEN',
    flag: 'metrics-token',
    parse: (raw) => (raw === null || (typeof raw === 'string' && /^[\x21-\x7e]{16,256}$/.test(raw)) ? ok(raw) : no('must be 16 to 256 printable characters without spaces (e.g. `openssl rand -hex 32`)')),
  },
  metricsListen: {
    env: 'OTA_SERVER_METRICS_LISTEN',
    flag: 'metrics-listen',
    parse: (raw) => (raw === null || (typeof raw === 'string' && parseListen(raw) !== null) ? ok(raw) : no('must be host:port, such as 127.0.0.1:9464 or [::1]:9464')),
  },
  metrics: {
    env: 'OTA_SERVER_METRICS',
    flag: 'metrics',
    parse: (raw) => (raw === true || raw === 'on' ? ok(true) : raw === false || raw === 'off' ? ok(false) : no('must be on or off (true or false in the file)')),
  },
  tlsCert: { env: 'OTA_SERVER_TLS_CERT', flag: 'tls-cert', parse: optionalPath },
  tlsKey: { env: 'OTA_SERVER_TLS_KEY', flag: 'tls-key', parse: optionalPath },
  storage: { env: 'OTA_SERVER_STORAGE', flag: 'storage', parse: oneOf(['local', 's3']) },
  s3Endpoint: { env: 'OTA_SERVER_S3_ENDPOINT', flag: 's3-endpoint', parse: httpUrl },
  s3Region: { env: 'OTA_SERVER_S3_REGION', flag: 's3-region', parse: (raw) => (typeof raw === 'string' && /^[a-z0-9-]{1,64}$/.test(raw) ? ok(raw) : no('must be a region name such as us-east-1')) },
  s3Bucket: { env: 'OTA_SERVER_S3_BUCKET', flag: 's3-bucket', parse: optionalText(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a bucket name (3-63 lower-case letters, digits, dots, hyphens)') },
  s3Prefix: {
    env: 'OTA_SERVER_S3_PREFIX',
    flag: 's3-prefix',
    parse: (raw) => (typeof raw === 'string' && /^([\x21-\x7e]*\/)?$/.test(raw) && !raw.startsWith('/') ? ok(raw) : no('must be empty or printable characters ending in "/" (not starting with one), such as otaab/')),
  },
  s3PathStyle: { env: 'OTA_SERVER_S3_PATH_STYLE', flag: 's3-path-style', parse: bool },
  s3AccessKeyId: { env: 'OTA_SERVER_S3_ACCESS_KEY_ID', flag: 's3-access-key-id', parse: optionalText(/^[\x21-\x7e]{1,256}$/, 'must be an access key id') },
  s3SecretAccessKey: { env: 'OTA_SERVER_S3_SECRET_ACCESS_KEY', flag: 's3-secret-access-key', parse: optionalText(/^[\x21-\x7e]{1,256}$/, 'must be a secret access key') },
  bundleDownload: { env: 'OTA_SERVER_BUNDLE_DOWNLOAD', flag: 'bundle-download', parse: oneOf(['server', 'presigned', 'public']) },
  bundlePublicUrl: { env: 'OTA_SERVER_BUNDLE_PUBLIC_URL', flag: 'bundle-public-url', parse: httpUrl },
  presignTtl: { env: 'OTA_SERVER_PRESIGN_TTL', flag: 'presign-ttl', parse: int(60, 7 * 24 * 3600) },
  databaseUrl: {
    env: 'OTA_SERVER_DATABASE_URL',
    flag: 'database-url',
    parse: (raw) => {
      if (raw === null || raw === '') return ok(null);
      if (typeof raw !== 'string' || !/^postgres(ql)?:\/\/\S+$/.test(raw)) return no('must be a postgres:// or postgresql:// connection URL');
      return ok(raw);
    },
  },
};

/** OTA_SERVER_* variables read elsewhere: the config file's name and the server key's passphrase. */
const OTHER_ENV = ['OTA_SERVER_CONFIG', 'OTA_SERVER_KEY_PASSPHRASE'];

/** One source of settings, applied in order. */
export interface ConfigLayer {
  /** How errors name it: `config file /etc/x.json`, `environment`, `command line`. */
  source: 'file' | 'env' | 'flags';
  name: string;
  /** Values by config key (file) or by env variable / flag name (env, flags). */
  values: Readonly<Record<string, unknown>>;
  /** Directory relative paths are resolved against. */
  base: string;
}

function fail(layer: ConfigLayer, code: 'SERVER_CONFIG_UNKNOWN_KEY' | 'SERVER_CONFIG_INVALID', text: string): never {
  // A bad flag is a usage mistake (exit 2); a bad file or environment is an operational one.
  if (layer.source === 'flags') throw new UsageError(text);
  throw new OtaError(code, `${layer.name}: ${text}`);
}

/** Merges the layers over the defaults, validating every value once; the result is frozen. */
export function resolveConfig(layers: readonly ConfigLayer[]): ServerConfig {
  const out: Record<string, unknown> = { ...DEFAULTS };
  const keys = Object.keys(FIELDS) as Key[];
  for (const layer of layers) {
    for (const [name, raw] of Object.entries(layer.values)) {
      if (raw === undefined) continue;
      const key =
        layer.source === 'file' ? keys.find((k) => k === name) : keys.find((k) => (layer.source === 'env' ? FIELDS[k].env : FIELDS[k].flag) === name);
      if (!key) {
        if (layer.source === 'env') {
          // The environment holds everything else too; only a misspelt OTA_SERVER_* is ours.
          if (!name.startsWith('OTA_SERVER_') || OTHER_ENV.includes(name)) continue;
          fail(layer, 'SERVER_CONFIG_UNKNOWN_KEY', `unknown variable ${name}; known: ${[...keys.map((k) => FIELDS[k].env), ...OTHER_ENV].join(', ')}`);
        }
        fail(layer, 'SERVER_CONFIG_UNKNOWN_KEY', `unknown key "${name}"; known keys: ${keys.join(', ')}`);
      }
      const label = layer.source === 'file' ? `key "${key}"` : layer.source === 'env' ? FIELDS[key].env : `option --${FIELDS[key].flag}`;
      const parsed = FIELDS[key].parse(raw, layer.source !== 'file', layer.base);
      if (!parsed.ok) fail(layer, 'SERVER_CONFIG_INVALID', `${label} ${parsed.why}, not ${JSON.stringify(raw)}`);
      out[key] = parsed.value;
    }
  }
  if (out.metrics === false && (out.metricsToken !== null || out.metricsListen !== null)) {
    throw new OtaError('SERVER_CONFIG_INVALID', 'metrics is off: metricsToken and metricsListen have nothing to serve; unset them or turn metrics on');
  }
  if ((out.tlsCert === null) !== (out.tlsKey === null)) {
    throw new OtaError('SERVER_CONFIG_INVALID', 'tlsCert and tlsKey go together: set both (HTTPS) or neither (plain HTTP)');
  }
  checkStorage(out);
  return Object.freeze(out) as unknown as ServerConfig;
}

/** The storage keys that only make sense together. */
function checkStorage(c: Record<string, unknown>): void {
  const bad = (text: string): never => {
    throw new OtaError('SERVER_CONFIG_INVALID', text);
  };
  if (c.storage === 's3' && c.s3Bucket === null) bad('storage "s3" needs s3Bucket');
  if ((c.s3AccessKeyId === null) !== (c.s3SecretAccessKey === null)) bad('s3AccessKeyId and s3SecretAccessKey go together: set both, or neither (then AWS_ACCESS_KEY_ID and the SDK\'s usual sources are used)');
  if (c.bundleDownload === 'presigned' && c.storage !== 's3') bad('bundleDownload "presigned" needs storage "s3"');
  if (c.bundleDownload === 'public' && c.bundlePublicUrl === null) bad('bundleDownload "public" needs bundlePublicUrl (the base URL serving <base>/<sha256>)');
}

/** Reads a JSON config file as a layer. */
export async function fileLayer(file: string): Promise<ConfigLayer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new OtaError('SERVER_CONFIG_UNREADABLE', `config file ${file}: cannot be read (${errorMessage(cause)})`, { cause });
  }
  let values: unknown;
  try {
    values = parseStrictJson(text, `config file ${file}`);
  } catch (cause) {
    throw new OtaError('SERVER_CONFIG_UNREADABLE', `config file ${file}: ${errorMessage(cause)}`, { cause });
  }
  if (!values || typeof values !== 'object' || Array.isArray(values)) {
    throw new OtaError('SERVER_CONFIG_UNREADABLE', `config file ${file}: must hold a JSON object`);
  }
  return { source: 'file', name: `config file ${file}`, values: values as Record<string, unknown>, base: dirname(resolve(file)) };
}

/** The OTA_SERVER_* variables of `env` as a layer. */
export function envLayer(env: NodeJS.ProcessEnv, cwd = process.cwd()): ConfigLayer {
  const values: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(env)) if (name.startsWith('OTA_SERVER_') && v !== undefined && v !== '') values[name] = v;
  return { source: 'env', name: 'environment', values, base: cwd };
}

/** Command-line option values (by flag name) as a layer. */
export function flagLayer(values: Record<string, unknown>, cwd = process.cwd()): ConfigLayer {
  const picked: Record<string, unknown> = {};
  for (const f of Object.values(FIELDS)) {
    const v = values[f.flag];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    picked[f.flag] = v;
  }
  return { source: 'flags', name: 'command line', values: picked, base: cwd };
}

/**
 * The configuration from flags, environment and the config file (named by --config or
 * OTA_SERVER_CONFIG), in increasing precedence: file, environment, flags.
 */
export async function loadConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<ServerConfig> {
  const file = typeof flags.config === 'string' ? flags.config : env.OTA_SERVER_CONFIG || undefined;
  const layers: ConfigLayer[] = [];
  if (file) layers.push(await fileLayer(file));
  layers.push(envLayer(env), flagLayer(flags));
  return resolveConfig(layers);
}
