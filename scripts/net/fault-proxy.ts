/**
 * A loopback HTTP proxy that injects network faults between an agent and the server: it cuts
 * a response after a number of body bytes, stalls, throttles to a slow link, or answers 5xx,
 * following a per-request plan; and it counts the body bytes it forwarded for each path.
 * Used by the end-to-end and reliability suites (real sockets, nothing mocked).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What to do with one proxied request. */
export type Fault =
  | { kind: 'pass' }
  /** Forward the response but destroy the connection after `afterBytes` body bytes. */
  | { kind: 'cut'; afterBytes: number }
  /** Forward `afterBytes` body bytes, then send nothing for `ms` (the connection stays open), then go on. */
  | { kind: 'stall'; afterBytes: number; ms: number }
  /** Forward the body at `bytesPerSecond`. */
  | { kind: 'slow'; bytesPerSecond: number }
  /** Answer `status` without asking the server. */
  | { kind: 'error'; status: number };

/** Chooses the fault for a request: `n` counts requests to matching paths from 0. */
export type FaultPlan = (req: { method: string; path: string; n: number; range: string | undefined }) => Fault;

/** A running proxy. */
export interface FaultProxy {
  url: string;
  /** Body bytes forwarded to clients, per path prefix up to the query string. */
  bytesSent: Map<string, number>;
  /** Requests seen, in order. */
  log: { method: string; path: string; range: string | undefined; fault: Fault['kind']; status: number }[];
  setPlan(plan: FaultPlan): void;
  /** Points the proxy at another upstream (e.g. a restarted server on a new port). */
  setUpstream(url: string): void;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts a proxy on 127.0.0.1 (random port) in front of `upstream`. */
export async function startFaultProxy(upstream: string, plan: FaultPlan = () => ({ kind: 'pass' })): Promise<FaultProxy> {
  let current = plan;
  let target = new URL(upstream);
  const counts = new Map<string, number>();
  const bytesSent = new Map<string, number>();
  const log: FaultProxy['log'] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const n = counts.get(path) ?? 0;
    counts.set(path, n + 1);
    const range = req.headers.range;
    const fault = current({ method: req.method ?? 'GET', path, n, range });
    const entry = { method: req.method ?? 'GET', path, range, fault: fault.kind, status: 0 };
    log.push(entry);
    if (fault.kind === 'error') {
      entry.status = fault.status;
      res.writeHead(fault.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'PROXY_FAULT', message: `injected ${fault.status}` }));
      req.resume();
      return;
    }
    const upstreamReq = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target.host },
    });
    req.pipe(upstreamReq);
    upstreamReq.on('error', () => res.destroy());
    upstreamReq.on('response', (up) => {
      entry.status = up.statusCode ?? 0;
      res.writeHead(up.statusCode ?? 502, up.headers);
      let sent = 0;
      const count = (k: number): void => {
        sent += k;
        bytesSent.set(path, (bytesSent.get(path) ?? 0) + k);
      };
      void (async () => {
        try {
          for await (const chunk of up as AsyncIterable<Buffer>) {
            let c = chunk;
            if (fault.kind === 'cut' && sent + c.length > fault.afterBytes) {
              const keep = c.subarray(0, Math.max(0, fault.afterBytes - sent));
              if (keep.length) {
                res.write(keep);
                count(keep.length);
              }
              // Let the bytes leave before the connection dies, as on a real dropped link.
              await sleep(20);
              res.socket?.destroy();
              up.destroy();
              return;
            }
            if (fault.kind === 'stall' && sent <= fault.afterBytes && sent + c.length > fault.afterBytes) {
              const first = c.subarray(0, fault.afterBytes - sent);
              res.write(first);
              count(first.length);
              await sleep(fault.ms);
              c = c.subarray(first.length);
            }
            if (fault.kind === 'slow') {
              for (let i = 0; i < c.length; i += 1024) {
                const piece = c.subarray(i, i + 1024);
                if (!res.write(piece)) await new Promise<void>((r) => res.once('drain', () => r()));
                count(piece.length);
                await sleep((piece.length / fault.bytesPerSecond) * 1000);
                if (res.destroyed) return;
              }
              continue;
            }
            if (c.length) {
              if (!res.write(c)) await new Promise<void>((r) => res.once('drain', () => r()));
              count(c.length);
            }
            if (res.destroyed) return;
          }
          res.end();
        } catch {
          res.destroy();
        }
      })();
    });
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    bytesSent,
    log,
    setPlan(p) {
      current = p;
    },
    setUpstream(u) {
      target = new URL(u);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
