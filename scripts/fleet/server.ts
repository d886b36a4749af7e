/**
 * A real `ota-server` process on loopback for the demo, the end-to-end and reliability suites
 * and the benchmarks: started on a data directory (port 0 unless given), stopped with a signal
 * (SIGKILL for a crash), restarted on the same data and port; plus token creation and a small
 * JSON client for the API.
 */
import { execa, type ResultPromise } from 'execa';
import { basename, dirname, join, resolve } from 'node:path';
import { testDatabaseEnv } from './test-database.js';

const HERE = dirname(new URL(import.meta.url).pathname);
// The repository root, whether this runs compiled (dist/scripts/fleet) or from source (the tests).
const ROOT = resolve(HERE, ...(basename(resolve(HERE, '..', '..')) === 'dist' ? ['..', '..', '..'] : ['..', '..']));
/** The compiled server CLI. */
export const SERVER_CLI = join(ROOT, 'dist', 'server', 'cli.js');

/** How to start the server. */
export interface ServerOptions {
  data: string;
  releaseKeys: string[];
  port?: number;
  /** Extra `ota-server start` flags, e.g. ['--poll-interval', '2']. */
  args?: string[];
  /** Extra environment (e.g. OTA_SERVER_DATABASE_URL). */
  env?: Record<string, string>;
}

/** A running server process. */
export class ServerProcess {
  private child: ResultPromise | undefined;
  private output = '';
  /** How the current process ended (exit code or signal), or null while it runs. */
  private ended: string | null = null;
  url = '';

  private constructor(private readonly opts: ServerOptions) {}

  /** Starts `ota-server start` and waits for its "listening on URL" line. */
  static async start(opts: ServerOptions): Promise<ServerProcess> {
    const s = new ServerProcess(opts);
    await s.launch(opts.port ?? 0);
    return s;
  }

  private async launch(port: number): Promise<void> {
    // `start` opens only a data directory that `init` made; init leaves an initialised one alone.
    const db = { ...testDatabaseEnv(this.opts.data), ...this.opts.env };
    const init = await execa('node', [SERVER_CLI, 'init', '--data', this.opts.data], { reject: false, stdin: 'ignore', env: db });
    if (init.exitCode !== 0) throw new Error(`ota-server init failed (exit ${init.exitCode}): ${String(init.stderr)}`);
    const args = [SERVER_CLI, 'start', '--data', this.opts.data, '--host', '127.0.0.1', '--port', String(port), ...this.opts.releaseKeys.flatMap((k) => ['--release-key', k]), ...(this.opts.args ?? [])];
    const child = execa('node', args, { reject: false, stdin: 'ignore', all: true, buffer: false, env: { OTA_SERVER_LOG_LEVEL: 'warn', ...db } });
    this.child = child;
    this.output = '';
    this.ended = null;
    void child.then((r) => {
      if (this.child === child) this.ended = String(r.exitCode ?? r.signal);
    });
    this.url = await new Promise<string>((resolveUrl, reject) => {
      child.all?.setEncoding('utf8');
      child.all?.on('data', (d: string) => {
        this.output += d;
        const m = /listening on (http:\/\/[^\s]+)/.exec(this.output);
        if (m?.[1]) resolveUrl(m[1]);
      });
      void child.then((r) => reject(new Error(`ota-server exited ${r.exitCode ?? r.signal} before listening:\n${this.output}`)));
    });
  }

  /** The port it listens on. */
  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Everything the process printed. */
  get log(): string {
    return this.output;
  }

  /** What a failed run needs to say of it: running or how it ended, and its last lines. */
  describe(lines = 30): string {
    const tail = this.output.trimEnd().split('\n').slice(-lines).join('\n');
    return `${this.url}: ${this.ended === null ? 'running' : `ended (${this.ended})`}${tail ? `; its last lines:\n${tail}` : '; it printed nothing'}`;
  }

  /** Stops it with `signal` (SIGKILL is a crash) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    if (!c) return;
    c.kill(signal);
    await c;
    this.child = undefined;
  }

  /** Sends `signal` and returns (SIGSTOP and SIGCONT hold it still while its data is copied). */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** Starts it again on the same data directory and port. */
  async restart(): Promise<void> {
    const port = this.port;
    await this.stop();
    await this.launch(port);
  }
}

/** Creates a token of `role` on the server's data directory; returns the token. */
export async function createToken(data: string, role: 'ops' | 'technician' | 'enroll', name?: string, env: Record<string, string> = {}): Promise<string> {
  const r = await execa('node', [SERVER_CLI, 'token', 'create', '--role', role, '--data', data, ...(name ? ['--name', name] : [])], {
    env: { ...testDatabaseEnv(data), ...env },
  });
  return String(r.stdout).trim();
}

/** Calls the API with a bearer token; throws with the server's error code on a non-2xx answer. */
export async function api<T = Record<string, unknown>>(url: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as T & { error?: string; message?: string }) : ({} as T & { error?: string; message?: string });
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${json.error ?? ''}: ${json.message ?? text}`);
  return json;
}

/** One device as GET /v1/devices shows it. */
export interface FleetRow {
  id: string;
  compatible: string;
  channel: string;
  lastSeen: string | null;
  slot: string | null;
  version: string | null;
  state: string | null;
  transaction: { id: string; version: string; state: string } | null;
  lastOutcome: { outcome: string; reason: string | null; version: string; at: string } | null;
  pendingRollback: string | null;
}

/** The fleet as the server sees it. */
export async function fleet(url: string, token: string): Promise<FleetRow[]> {
  return (await api<{ devices: FleetRow[] }>(url, token, 'GET', '/v1/devices')).devices;
}
