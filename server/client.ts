/**
 * The ops client of the server API, used by `ota-release upload|publish`: streams a bundle
 * up with got (never reading it into memory), publishes versions, and turns every failure into
 * one line that names the server's error code or the network problem.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import got, { RequestError, type Response } from 'got';
import { UsageError } from '../shared/cli.js';
import { OtaError, errorMessage } from '../shared/errors.js';
import { CHUNK } from '../shared/hashing.js';
import './errors.js';

/** The server refused a request: carries its stable code, message and HTTP status. */
export class ServerAnswerError extends Error {
  override readonly name = 'ServerAnswerError';
  constructor(
    readonly code: string,
    readonly serverMessage: string,
    readonly status: number,
  ) {
    super(`${code}: ${serverMessage} (HTTP ${status})`);
  }
}

/** What the server says about a stored release. */
export interface UploadResult {
  version: string;
  sha256: string;
  size: number;
  product: string;
  compatible: string[];
}

/** What the server says after publishing. */
export interface PublishResult {
  product: string;
  rollout: string;
  channel: string;
  version: string;
  previous: string | null;
  updated: string;
}

/** Server and token of a client. */
export interface ClientOptions {
  server: string;
  token: string;
}

const NETWORK_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** Turns a non-2xx answer into the error that names its code. */
export function answerError(status: number, body: string, url: string): Error {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed.error === 'string' && typeof parsed.message === 'string') return new ServerAnswerError(parsed.error, parsed.message, status);
  } catch {
    // not JSON: a proxy's or another server's page
  }
  const excerpt = body.replace(/\s+/g, ' ').trim().slice(0, 120);
  return new OtaError('CLIENT_BAD_ANSWER', `${url}: HTTP ${status} without an otaab error body${excerpt ? ` ("${excerpt}")` : ''}`);
}

/** Turns a got failure into an error naming the URL and what went wrong. */
export function networkError(err: unknown, url: string): Error {
  if (err instanceof RequestError) {
    const what = NETWORK_CODES[err.code] ?? err.code;
    return new OtaError('CLIENT_UNREACHABLE', `${url}: ${what} (${err.code}${err.message && !err.message.includes(err.code) ? `: ${err.message}` : ''})`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** A client of one server with one token. */
export class OpsClient {
  private readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.server);
    } catch {
      throw new TypeError(`server URL "${opts.server}" is not a URL; give one like https://ota.example.com`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`server URL "${opts.server}" must start with http:// or https://`);
    this.base = u.href.endsWith('/') ? u.href : `${u.href}/`;
  }

  /** Absolute URL of an API path such as `v1/releases`. */
  url(path: string): string {
    return new URL(path, this.base).href;
  }

  private parse<T>(res: Response<string>, url: string): T {
    if (res.statusCode >= 400) throw answerError(res.statusCode, res.body, url);
    try {
      return JSON.parse(res.body) as T;
    } catch (cause) {
      throw new OtaError('CLIENT_BAD_ANSWER', `${url}: HTTP ${res.statusCode} with a body that is not JSON (${errorMessage(cause)})`, { cause });
    }
  }

  /** Streams the bundle at `path` to the server; `onProgress(sent, total)` as it goes. */
  async upload(path: string, onProgress?: (sent: number, total: number) => void): Promise<UploadResult> {
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new Error('not a regular file');
      size = st.size;
    } catch (cause) {
      throw new OtaError('CLIENT_FILE_UNREADABLE', `bundle ${path}: cannot be read (${errorMessage(cause)})`, { cause });
    }
    const url = this.url('v1/releases');
    let res: Response<string>;
    try {
      const req = got.post(url, {
        body: createReadStream(path, { highWaterMark: CHUNK }),
        headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/octet-stream', 'content-length': String(size) },
        throwHttpErrors: false,
        // A stream cannot be sent twice; a CI job re-runs the command instead.
        retry: { limit: 0 },
        timeout: { connect: 15_000, send: 24 * 3600_000, response: 600_000 },
      });
      // `on` returns the request promise itself, awaited just below.
      if (onProgress) void req.on('uploadProgress', (p) => onProgress(p.transferred, p.total ?? size));
      res = await req;
    } catch (err) {
      throw networkError(err, url);
    }
    return this.parse<UploadResult>(res, url);
  }

  /** Points a product's `channel` at its release `version`. */
  async publish(product: string, version: string, channel: string): Promise<PublishResult> {
    return this.request<PublishResult>('PUT', `v1/channels/${encodeURIComponent(channel)}`, { product, version });
  }

  /**
   * A JSON request to an API path (`v1/...`, query included). GET, PUT and DELETE are retried
   * on network errors (they are idempotent); POST is not.
   */
  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const url = this.url(path);
    let res: Response<string>;
    try {
      res = await got(url, {
        method,
        ...(body !== undefined ? { json: body } : {}),
        headers: { authorization: `Bearer ${this.opts.token}` },
        throwHttpErrors: false,
        retry: { limit: method === 'POST' ? 0 : 2, methods: ['GET', 'PUT', 'DELETE'] },
        timeout: { request: 60_000 },
      });
    } catch (err) {
      throw networkError(err, url);
    }
    return this.parse<T>(res, url);
  }
}

/**
 * The client a command should use: --server (or OTA_SERVER) and the token in OTA_TOKEN. Tokens
 * are never taken from the command line, where `ps` and shell history would show them.
 */
export function clientFromEnv(values: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): OpsClient {
  const server = typeof values.server === 'string' && values.server !== '' ? values.server : env.OTA_SERVER;
  if (!server) throw new UsageError('option --server URL is required (or set OTA_SERVER)');
  const token = env.OTA_TOKEN;
  if (!token) throw new UsageError('set OTA_TOKEN to an ops token (`ota-server token create --role ops`)');
  try {
    return new OpsClient({ server, token });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}
