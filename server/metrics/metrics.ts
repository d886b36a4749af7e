/**
 * The server's Prometheus metrics (prom-client), one registry per app. Counters and histograms
 * of the request path are fast.ts's (a series resolved once, an update is an array increment;
 * prom-client's own hash the labels at every update), exported through the same registry;
 * fleet-wide gauges (devices by state, silent devices, rollouts) are read from the database
 * only when Prometheus scrapes.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Report } from '../../shared/protocol.js';
import type { Db } from '../db/open.js';
import { FastCounter, FastHistogram, type Incrementer, type Observer } from './fast.js';
import { reasonLabel } from './labels.js';

/** Request latency buckets, seconds: a check-in takes about a millisecond, an upload minutes. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
/** Store operation buckets, seconds: most are a few prepared statements. */
const STORE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2];

export type { Observer } from './fast.js';

/** A gauge source read at scrape time: returns label sets and values. */
export type GaugeSource = () => { labels: Record<string, string>; value: number }[];

/** The metrics of one server app. */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly checkins;
  private readonly checkinChildren = new Map<string, Incrementer>();
  private readonly downloads;
  private readonly downloadBytes;
  private readonly reports;
  private readonly reportChildren = new Map<string, Incrementer>();
  private readonly requests;
  private readonly requestChildren = new Map<string, Observer>();
  private readonly store;
  private readonly storeChildren = new Map<string, Observer>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'otaab_server_' });
    this.checkins = new FastCounter('otaab_checkins_total', 'Check-ins answered with a signed directive, by directive type', ['directive']);
    for (const d of ['none', 'update', 'rollback']) this.checkinChildren.set(d, this.checkins.child({ directive: d }));
    this.downloads = new FastCounter('otaab_downloads_total', 'Bundle downloads started, by kind (full or partial, a resumed download)', ['kind']);
    for (const k of ['full', 'partial']) this.downloads.child({ kind: k });
    const bytes = new FastCounter('otaab_download_bytes_total', 'Bundle bytes read from storage and sent to devices', []);
    this.downloadBytes = bytes.child();
    this.reports = new FastCounter(
      'otaab_reports_total',
      'Device reports stored (duplicates excluded), by outcome (success, failure, or progress for a report without one) and reason class',
      ['outcome', 'reason'],
    );
    this.requests = new FastHistogram(
      'otaab_http_request_duration_seconds',
      'HTTP request latency from arrival to the end of the answer, by method, route pattern and status',
      ['method', 'route', 'status'],
      REQUEST_BUCKETS,
    );
    this.store = new FastHistogram(
      'otaab_store_operation_duration_seconds',
      'Latency of database operations (query group and method), including waits for the write lock',
      ['op'],
      STORE_BUCKETS,
    );
    for (const f of [this.checkins, this.downloads, bytes, this.reports, this.requests, this.store]) f.register(this.registry);
  }

  /** Counts one check-in answer. */
  checkin(directive: string): void {
    let c = this.checkinChildren.get(directive);
    if (!c) this.checkinChildren.set(directive, (c = this.checkins.child({ directive })));
    c.inc();
  }

  /** Counts a download and, when its stream closes, the bytes it read. */
  download(partial: boolean, stream: NodeJS.EventEmitter & { bytesRead: number }): void {
    this.downloads.child({ kind: partial ? 'partial' : 'full' }).inc();
    stream.once('close', () => this.downloadBytes.inc(stream.bytesRead));
  }

  /** Counts a stored report. */
  report(r: Pick<Report, 'outcome' | 'reason'>): void {
    const outcome = r.outcome ?? 'progress';
    const reason = r.outcome === undefined ? '' : reasonLabel(r.reason);
    const key = `${outcome}\0${reason}`;
    let c = this.reportChildren.get(key);
    if (!c) {
      // Reasons are bounded by reasonLabel; past 200 distinct label sets, lump the rest together.
      c = this.reports.child({ outcome, reason: this.reportChildren.size < 200 ? reason : 'other' });
      this.reportChildren.set(key, c);
    }
    c.inc();
  }

  /** Records one answered request; `route` is the pattern (`/v1/devices/:id`), never the raw URL. */
  request(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let o = this.requestChildren.get(key);
    if (!o) this.requestChildren.set(key, (o = this.requests.child({ method, route, status: String(status) })));
    o.observe(seconds);
  }

  /** The observer of one store operation. */
  storeOp(op: string): Observer {
    let o = this.storeChildren.get(op);
    if (!o) this.storeChildren.set(op, (o = this.store.child({ op })));
    return o;
  }

  /** Registers a gauge whose values are read from `source` at every scrape. */
  gauge(name: string, help: string, labelNames: string[], source: GaugeSource): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { labels, value } of source()) {
          if (labelNames.length === 0) this.set(value);
          else this.set(labels, value);
        }
      },
    });
  }

  /** The exposition text. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The exposition content type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Silence thresholds of `otaab_devices_silent`, label → seconds. */
const SILENT: readonly [string, number][] = [
  ['1h', 3600],
  ['1d', 86400],
  ['7d', 7 * 86400],
];

/** The fleet gauges every server has, read from its database at scrape time. */
export function fleetGauges(m: ServerMetrics, db: Db): void {
  const byState = db.prepare("SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM devices GROUP BY 1");
  m.gauge('otaab_devices', 'Enrolled devices by the state they last reported (unknown: never checked in)', ['state'], () =>
    (byState.all() as { state: string; n: number }[]).map((r) => ({ labels: { state: r.state }, value: r.n })),
  );
  const silent = db.prepare('SELECT count(*) FROM devices WHERE coalesce(last_seen, enrolled) < ?').pluck();
  m.gauge('otaab_devices_silent', 'Devices not heard from (no check-in, or none since enrollment) for at least the labelled time', ['for'], () => {
    const now = Date.now();
    return SILENT.map(([label, s]) => ({ labels: { for: label }, value: silent.get(new Date(now - s * 1000).toISOString()) as number }));
  });
  const pending = db.prepare('SELECT count(*) FROM rollbacks WHERE delivered IS NULL').pluck();
  m.gauge('otaab_rollback_requests_waiting', 'Technician rollback requests not yet delivered to their device', [], () => [{ labels: {}, value: pending.get() as number }]);
  const releases = db.prepare('SELECT count(*) FROM releases').pluck();
  m.gauge('otaab_releases', 'Stored releases', [], () => [{ labels: {}, value: releases.get() as number }]);
  rolloutGauges(m, db);
}

/** Rollout gauges: every rollout by state; the open phase and members of the active ones. */
function rolloutGauges(m: ServerMetrics, db: Db): void {
  const byState = db.prepare('SELECT state, count(*) AS n FROM rollouts GROUP BY state');
  m.gauge('otaab_rollouts', 'Rollouts by state (running, paused, completed, aborted, superseded)', ['state'], () => {
    const counts = new Map<string, number>(['running', 'paused', 'completed', 'aborted', 'superseded'].map((s) => [s, 0]));
    for (const r of byState.all() as { state: string; n: number }[]) counts.set(r.state, r.n);
    return [...counts].map(([state, n]) => ({ labels: { state }, value: n }));
  });
  // Only running and paused rollouts: their number stays small, finished ones would grow forever.
  const active = db.prepare("SELECT id, product, version, state, phase FROM rollouts WHERE state IN ('running', 'paused')");
  m.gauge('otaab_rollout_phase', 'The last open phase (1 for the first) of each running or paused rollout', ['rollout', 'product', 'version', 'state'], () =>
    (active.all() as { id: string; product: string; version: string; state: string; phase: number }[]).map((r) => ({
      labels: { rollout: r.id, product: r.product, version: r.version, state: r.state },
      value: r.phase + 1,
    })),
  );
  const members = db.prepare(
    `SELECT o.id, o.product, o.version, d.phase, d.status, count(*) AS n FROM rollouts o JOIN rollout_devices d ON d.rollout = o.id
     WHERE o.state IN ('running', 'paused') GROUP BY o.id, d.phase, d.status`,
  );
  m.gauge('otaab_rollout_devices', 'Members of each running or paused rollout by phase (1 for the first) and status (waiting, offered, installing, success, failure)', ['rollout', 'product', 'version', 'phase', 'status'], () =>
    (members.all() as { id: string; product: string; version: string; phase: number; status: string; n: number }[]).map((r) => ({
      labels: { rollout: r.id, product: r.product, version: r.version, phase: String(r.phase + 1), status: r.status },
      value: r.n,
    })),
  );
}
