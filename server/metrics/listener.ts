/**
 * The metrics exposition on an address of its own (`metricsListen`), for a scraper on a
 * management network: a bare node:http server answering `GET /metrics` and nothing else. When
 * `metricsToken` is set too, it asks for it here as well.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerMetrics } from './metrics.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Null when the Authorization header carries `token`; otherwise the error code to answer. */
export function scrapeAllowed(header: string | undefined, token: string): 'AUTH_REQUIRED' | 'AUTH_INVALID' | null {
  if (header === undefined) return 'AUTH_REQUIRED';
  const m = BEARER.exec(header);
  if (!m) return 'AUTH_REQUIRED';
  // Compared as digests: equal lengths, and no timing hint of how much of the token matched.
  return timingSafeEqual(digest(m[1]!), digest(token)) ? null : 'AUTH_INVALID';
}

/** Parses `host:port` (`[::1]:9464` for IPv6); null when it is not one. */
export function parseListen(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? m[2]!, port };
}

/** Starts the listener; resolves with the server and the URL of its /metrics. */
export async function startMetricsListener(metrics: ServerMetrics, listen: string, token: string | null): Promise<{ server: Server; url: string }> {
  const at = parseListen(listen);
  if (!at) throw new Error(`metricsListen "${listen}" is not host:port`);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (status: number, code: string, message: string): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: code, message }));
    };
    if (path !== '/metrics') return answer(404, 'ROUTE_NOT_FOUND', `${req.method ?? 'GET'} ${path}: this address serves only GET /metrics`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(404, 'ROUTE_NOT_FOUND', `${req.method ?? '?'} /metrics: only GET`);
    if (token !== null) {
      const verdict = scrapeAllowed(req.headers.authorization, token);
      if (verdict !== null) return answer(401, verdict, 'GET /metrics: send "Authorization: Bearer METRICS_TOKEN"');
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => answer(500, 'SERVER_INTERNAL', `GET /metrics: ${err instanceof Error ? err.message : String(err)}`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { server, url: `http://${host}:${addr.port}/metrics` };
}
