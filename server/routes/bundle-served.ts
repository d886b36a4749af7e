/**
 * Bytes served per bundle, counted as the download route's streams hand them to the socket:
 * what a delta rollout really costs on the wire, to compare with `ota-release delta-report`.
 * Counters live in memory since the server started (the Prometheus exporter can read the same
 * object); `GET /v1/bundles/:sha256/served` shows them to ops.
 */
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import { NO_QUERY, SHA256, object, responses, type Schema } from '../schemas/common.js';

/** One bundle's counters. */
export interface Served {
  /** GET requests answered with a body (whole or a range). */
  requests: number;
  /** Of those, 206 answers. */
  rangeRequests: number;
  /** Body bytes sent. */
  bytes: number;
}

/** The counters of every bundle downloaded since start. */
export class ServedCounter {
  private readonly bundles = new Map<string, Served>();

  /** Counts one answer and, as they go out, the bytes of its body stream. */
  count(sha256: string, partial: boolean, body: Readable): void {
    let s = this.bundles.get(sha256);
    if (!s) this.bundles.set(sha256, (s = { requests: 0, rangeRequests: 0, bytes: 0 }));
    s.requests++;
    if (partial) s.rangeRequests++;
    const served = s;
    body.on('data', (chunk: Buffer) => {
      served.bytes += chunk.length;
    });
  }

  /** A bundle's counters (zero when never downloaded). */
  get(sha256: string): Served {
    return { ...(this.bundles.get(sha256) ?? { requests: 0, rangeRequests: 0, bytes: 0 }) };
  }
}

const servedSchema: Schema = {
  summary: 'Requests and body bytes served for a bundle since the server started',
  params: object({ sha256: SHA256 }),
  querystring: NO_QUERY,
  response: responses({ 200: object({ sha256: SHA256, requests: { type: 'integer' }, rangeRequests: { type: 'integer' }, bytes: { type: 'integer' } }) }),
};

/** Registers GET /bundles/:sha256/served on `app` (inside the bundle routes' plugin). */
export function servedRoute(app: FastifyInstance, counter: ServedCounter): void {
  app.get<{ Params: { sha256: string } }>('/bundles/:sha256/served', { schema: servedSchema, config: { roles: ['ops'] } }, async (req) => ({
    sha256: req.params.sha256,
    ...counter.get(req.params.sha256),
  }));
}
