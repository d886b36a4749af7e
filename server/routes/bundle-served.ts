/**
 * Bytes served per bundle, counted as the download route's streams hand them to the socket:
 * what a delta rollout really costs on the wire, to compare with `ota-release delta-report`.
 * Counters are kept in the database, shared by every instance and kept across restarts: each
 * process adds what it served in batches (at most every FLUSH_MS, and before every read), so a
 * download costs no write of its own. `GET /v1/bundles/:sha256/served` shows them to ops; what
 * another instance served in its last FLUSH_MS may not be in the sum yet.
 */
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import type { Store } from '../db/store.js';
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

/** How often counted bytes go to the database, ms. */
export const FLUSH_MS = 1000;

/** The counters of every bundle, batched in memory and added to the database. */
export class ServedCounter {
  private pending = new Map<string, Served>();
  private readonly timer: NodeJS.Timeout;
  private readonly addStmt;
  private readonly getStmt;

  constructor(private readonly store: Store) {
    this.addStmt = store.db.prepare(
      `INSERT INTO bundle_served (sha256, requests, range_requests, bytes) VALUES (?, ?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET requests = bundle_served.requests + excluded.requests,
       range_requests = bundle_served.range_requests + excluded.range_requests, bytes = bundle_served.bytes + excluded.bytes`,
    );
    this.getStmt = store.db.prepare('SELECT requests, range_requests AS rangeRequests, bytes FROM bundle_served WHERE sha256 = ?');
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  private entry(sha256: string): Served {
    let s = this.pending.get(sha256);
    if (!s) this.pending.set(sha256, (s = { requests: 0, rangeRequests: 0, bytes: 0 }));
    return s;
  }

  /** Counts one answer and, as they go out, the bytes of its body stream. */
  count(sha256: string, partial: boolean, body: Readable): void {
    const s = this.entry(sha256);
    s.requests++;
    if (partial) s.rangeRequests++;
    body.on('data', (chunk: Buffer) => {
      this.entry(sha256).bytes += chunk.length;
    });
  }

  /** Adds what was counted since the last flush to the database (one transaction). */
  flush(): void {
    if (this.pending.size === 0 || !this.store.db.open) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      this.store.transaction(() => {
        for (const [sha, s] of batch) this.addStmt.run(sha, s.requests, s.rangeRequests, s.bytes);
      });
    } catch {
      // The database is away for a moment: keep the counts for the next flush.
      for (const [sha, s] of batch) {
        const e = this.entry(sha);
        e.requests += s.requests;
        e.rangeRequests += s.rangeRequests;
        e.bytes += s.bytes;
      }
    }
  }

  /** A bundle's counters (zero when never downloaded). */
  get(sha256: string): Served {
    this.flush();
    const row = this.getStmt.get(sha256) as Served | undefined;
    const extra = this.pending.get(sha256);
    const base = row ?? { requests: 0, rangeRequests: 0, bytes: 0 };
    return { requests: base.requests + (extra?.requests ?? 0), rangeRequests: base.rangeRequests + (extra?.rangeRequests ?? 0), bytes: base.bytes + (extra?.bytes ?? 0) };
  }

  /** Stops the timer after a last flush (the server closes). */
  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}

const servedSchema: Schema = {
  summary: 'Requests and body bytes served for a bundle, by every instance',
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
