#!/usr/bin/env node
/**
 * A check-in load generator: many simulated devices, each with its own id and token, checking
 * in against a real `ota-server` with fresh nonces over keep-alive HTTP connections. Either a
 * closed loop (a fixed number of check-ins in flight) or an open loop (check-ins started at a
 * fixed rate whatever the answers' latency, latency counted from the scheduled start so a slow
 * server cannot hide its queue). Records every latency and status; verifies a sample of the
 * signed answers after the measured window so verification does not steal its CPU. Alongside,
 * it can post the devices' transaction reports (each with its own id, some sent twice on
 * purpose as a device retrying a lost answer would), recording every post and its answer.
 *
 * Library: `enrollDevices()`, `runCheckinLoad()` and `runReportLoad()`. CLI (its own process, so
 * it does not share an event loop with the server or the caller):
 *
 *   node dist/scripts/fleet/load.js enroll --url URL --enroll-token T --count 1000 --out devices.json
 *   node dist/scripts/fleet/load.js run --url URL --devices devices.json [--rate 2000 | --concurrency 32]
 *        [--seconds 10] [--count N] [--warmup-seconds 2] [--verify-every 100] [--keep-answers]
 *        [--reports-per-device 3 [--report-duplicate-every 10] [--report-spread-seconds 5]] [--json]
 *
 * SIGTERM or SIGINT ends a run early: no new check-in starts, reports still due go out at once,
 * and the stats are printed as usual.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { newNonce, verifyAnswer, type CheckinRequest, type DeviceState, type Directive, type Report } from '../../shared/protocol.js';
import { keyringFromArmored } from '../../shared/signing.js';

/** One simulated device: its id and its own device token. */
export interface LoadDevice {
  id: string;
  token: string;
}

/** Enrolled devices and the server key their answers are signed with. */
export interface EnrolledFleet {
  devices: LoadDevice[];
  /** Armored public server key, from the enrollment answer. */
  serverKey: string;
}

/** Options of {@link enrollDevices}. */
export interface EnrollOptions {
  url: string;
  /** An enroll (or ops) token. */
  enrollToken: string;
  count: number;
  /** Device ids are `${prefix}${n}` (default `load-`). */
  prefix?: string;
  compatible?: string;
  channel?: string;
  /** Enrollments in flight at once (default 16). */
  concurrency?: number;
}

/** Options of {@link runCheckinLoad}. */
export interface CheckinLoadOptions {
  /** Server base URL (http). */
  url: string;
  devices: readonly LoadDevice[];
  /** Open loop: start this many check-ins per second, whatever the latency. */
  rate?: number;
  /** Closed loop (when no `rate`): keep this many check-ins in flight (default 32). */
  concurrency?: number;
  /** Stop starting check-ins after this long, ms (default 10 000 unless `count` is given). */
  durationMs?: number;
  /** Stop after this many recorded check-ins. */
  count?: number;
  /** Check-ins started in this first stretch are sent but not recorded, ms (default 0). */
  warmupMs?: number;
  /** Most sockets kept to the server (default: one per check-in in flight). */
  sockets?: number;
  /** A check-in without an answer after this long counts as an error, ms (default 10 000). */
  timeoutMs?: number;
  /** Verify every `every`-th answer against the armored `serverKey` once the run is over; `keep` lists what each said. */
  verify?: { serverKey: string; every: number; keep?: boolean };
  /** What every device reports (default slot A, no committed version, idle). */
  checkin?: { slot?: string; version?: string | null };
  /** Stops the run early. */
  signal?: AbortSignal;
}

/** What a load run measured (recorded check-ins only, warm-up excluded). */
export interface CheckinLoadStats {
  /** Check-ins recorded. */
  sent: number;
  /** Answered 200 with a body: signed answers. */
  answered: number;
  /** From the first recorded start to the last recorded answer, s. */
  seconds: number;
  /** Signed answers per second over `seconds`. */
  perSecond: number;
  /** The rate asked for (open loop), per second. */
  targetRate?: number;
  /** HTTP status → count; network failures as `error:<code>`; open-loop starts still queued when time ran out as `not-started`. */
  statuses: Record<string, number>;
  /** Latency of recorded check-ins, ms: open loop from the scheduled start, closed loop from the send. */
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  /** Open loop: starts that waited because every device already had a check-in in flight. */
  lateStarts: number;
  /** Most check-ins in flight at once. */
  maxInFlight: number;
  /** Sampled answers verified with shared/protocol verifyAnswer; `answers` (with `verify.keep`) the ones that passed. */
  verified: { checked: number; failed: number; firstError?: string; answers?: VerifiedAnswer[] };
}

/** A sampled answer that verified, and what it told the device (with `verify.keep`). */
export interface VerifiedAnswer {
  device: string;
  /** When the check-in was sent and answered, ms since the epoch (so another process can line them up with its own events). */
  sentAt: number;
  answeredAt: number;
  directive: Directive['type'];
  /** The release offered, for an `update`. */
  version?: string;
  sha256?: string;
}

interface Sample {
  device: string;
  nonce: string;
  sentAt: number;
  at: Date;
  body: string;
}

/** Percentile (0–100) of sorted numbers. */
function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function postJson(agent: Agent, url: URL, path: string, token: string, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** Enrolls `count` devices through POST /v1/devices/enroll; returns their tokens and the server key. */
export async function enrollDevices(opts: EnrollOptions): Promise<EnrolledFleet> {
  const url = new URL(opts.url);
  const agent = new Agent({ keepAlive: true });
  const devices: LoadDevice[] = new Array<LoadDevice>(opts.count);
  let serverKey = '';
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      const n = next++;
      const id = `${opts.prefix ?? 'load-'}${n}`;
      const body = JSON.stringify({ id, compatible: opts.compatible ?? 'x86-gw', ...(opts.channel ? { channel: opts.channel } : {}) });
      const r = await postJson(agent, url, '/v1/devices/enroll', opts.enrollToken, body, 30_000);
      if (r.status !== 201) throw new Error(`enroll ${id}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      const a = JSON.parse(r.text) as { token: string; serverKey: string };
      devices[n] = { id, token: a.token };
      serverKey = a.serverKey;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 16, opts.count) }, worker));
  } finally {
    agent.destroy();
  }
  return { devices, serverKey };
}

/** Runs check-ins against `opts.url` until the duration or count is reached; returns what it measured. */
export async function runCheckinLoad(opts: CheckinLoadOptions): Promise<CheckinLoadStats> {
  if (opts.devices.length === 0) throw new Error('runCheckinLoad: no devices');
  if (opts.rate !== undefined && !(opts.rate > 0)) throw new Error(`runCheckinLoad: rate must be > 0, not ${opts.rate}`);
  const url = new URL(opts.url);
  const concurrency = Math.min(opts.concurrency ?? 32, opts.devices.length);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.sockets ?? Infinity, maxFreeSockets: opts.sockets ?? opts.devices.length });
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const warmupMs = opts.warmupMs ?? 0;
  const durationMs = opts.durationMs ?? (opts.count !== undefined ? Infinity : 10_000);
  const slot = opts.checkin?.slot ?? 'A';
  const version = opts.checkin?.version ?? null;

  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const samples: Sample[] = [];
  const busy = new Set<number>();
  let cursor = 0;
  let answered = 0;
  let recorded = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lateStarts = 0;
  let firstStart = Infinity;
  let lastEnd = 0;
  const t0 = performance.now();
  const measuring = (): boolean => recorded < (opts.count ?? Infinity) && performance.now() - t0 < warmupMs + durationMs && !opts.signal?.aborted;

  /** The next device with no check-in in flight, round-robin; undefined when all are busy. */
  const freeDevice = (): number | undefined => {
    for (let k = 0; k < opts.devices.length; k++) {
      const i = (cursor + k) % opts.devices.length;
      if (!busy.has(i)) {
        cursor = i + 1;
        return i;
      }
    }
    return undefined;
  };

  /** One check-in of device `i`; `scheduled` is when it should have started (open loop). */
  const checkin = async (i: number, scheduled: number): Promise<void> => {
    const dev = opts.devices[i]!;
    const record = scheduled - t0 >= warmupMs;
    if (record) {
      recorded++;
      firstStart = Math.min(firstStart, scheduled);
    }
    busy.add(i);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const nonce = newNonce();
    const body: CheckinRequest = { nonce, slot, version, state: 'idle' };
    const sentAt = Date.now();
    let status: string;
    try {
      const r = await postJson(agent, url, `/v1/devices/${encodeURIComponent(dev.id)}/checkin`, dev.token, JSON.stringify(body), timeoutMs);
      status = String(r.status);
      if (r.status === 200 && r.text.length > 0) {
        if (record) answered++;
        if (record && opts.verify && answered % opts.verify.every === 0) samples.push({ device: dev.id, nonce, sentAt, at: new Date(), body: r.text });
      }
    } catch (err) {
      status = `error:${(err as { code?: string }).code ?? 'unknown'}`;
    } finally {
      busy.delete(i);
      inFlight--;
    }
    if (record) {
      const end = performance.now();
      lastEnd = Math.max(lastEnd, end);
      latencies.push(end - scheduled);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };

  const running = new Set<Promise<void>>();
  const track = (p: Promise<void>): void => {
    running.add(p);
    void p.finally(() => running.delete(p));
  };

  if (opts.rate === undefined) {
    // Closed loop: each lane starts its next check-in when the previous one is answered.
    const lane = async (): Promise<void> => {
      while (measuring()) {
        const i = freeDevice();
        if (i === undefined) break;
        await checkin(i, performance.now());
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  } else {
    // Open loop: start what the clock says is due; a start that finds every device busy waits
    // in a queue, and its latency still counts from when it was due.
    const rate = opts.rate;
    const queue: { at: number; late: boolean }[] = [];
    let started = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        if (!measuring()) {
          // Time is up: what the server could not take by now never starts (a bounded run).
          for (const q of queue.splice(0)) {
            if (q.at - t0 >= warmupMs) statuses['not-started'] = (statuses['not-started'] ?? 0) + 1;
          }
        }
        const due = measuring() ? Math.floor(((now - t0) / 1000) * rate) : started;
        for (; started + queue.length < due; ) queue.push({ at: t0 + ((started + queue.length) / rate) * 1000, late: false });
        while (queue.length > 0) {
          const i = freeDevice();
          if (i === undefined) {
            for (const q of queue) q.late = true;
            break;
          }
          const next = queue.shift()!;
          started++;
          if (next.late) lateStarts++;
          track(checkin(i, next.at).then(tick));
        }
        if (!measuring() && queue.length === 0) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 1);
      tick();
    });
  }
  await Promise.all(running);
  agent.destroy();

  const verified: CheckinLoadStats['verified'] = { checked: 0, failed: 0, ...(opts.verify?.keep ? { answers: [] } : {}) };
  if (opts.verify && samples.length > 0) {
    const keyring = await keyringFromArmored([opts.verify.serverKey]);
    for (const s of samples) {
      verified.checked++;
      try {
        const a = await verifyAnswer(JSON.parse(s.body) as unknown, keyring, { device: s.device, nonce: s.nonce, now: s.at });
        verified.answers?.push(answerSeen(s, a.directive));
      } catch (err) {
        verified.failed++;
        verified.firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  }

  const sorted = Float64Array.from(latencies).sort();
  const seconds = latencies.length > 0 ? (lastEnd - firstStart) / 1000 : 0;
  const mean = sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1);
  return {
    sent: latencies.length,
    answered,
    seconds,
    perSecond: seconds > 0 ? answered / seconds : 0,
    ...(opts.rate !== undefined ? { targetRate: opts.rate } : {}),
    statuses,
    latencyMs: { mean, p50: pct(sorted, 50), p90: pct(sorted, 90), p99: pct(sorted, 99), max: sorted[sorted.length - 1] ?? NaN },
    lateStarts,
    maxInFlight,
    verified,
  };
}

/** What a verified sample told its device. */
function answerSeen(s: Sample, d: Directive): VerifiedAnswer {
  const seen: VerifiedAnswer = { device: s.device, sentAt: s.sentAt, answeredAt: s.at.getTime(), directive: d.type };
  return d.type === 'update' ? { ...seen, version: d.release.version, sha256: d.release.sha256 } : seen;
}

/** Options of {@link runReportLoad}. */
export interface ReportLoadOptions {
  /** Server base URL (http). */
  url: string;
  devices: readonly LoadDevice[];
  /** Reports each device sends, in order, for one transaction: download progress, then `installed`. */
  perDevice: number;
  /** The release version the reports are about (default 1.0.0). */
  version?: string;
  /** Every `duplicateEvery`-th report is sent again once answered, as a device retrying after a lost answer would (default 0: none). */
  duplicateEvery?: number;
  /** Reports in flight at once (default 8). */
  concurrency?: number;
  /** Spread the first sends evenly over this long, ms (default 0: each as soon as a lane is free). */
  spreadMs?: number;
  /** A report without an answer after this long counts as an error, ms (default 10 000). */
  timeoutMs?: number;
  /** Once aborted, reports still due go out at once: they are never dropped, their count bounds the run. */
  signal?: AbortSignal;
}

/** One report post and its answer. */
export interface ReportPost {
  device: string;
  id: string;
  transaction: string;
  state: DeviceState;
  /** True for the second send of a report id. */
  resend: boolean;
  /** HTTP status, or `error:<code>` for a network failure. */
  status: string;
  /** The answer's `duplicate` flag, on a 200. */
  duplicate?: boolean;
  ms: number;
}

/** What a report run did. */
export interface ReportLoadStats {
  /** Distinct report ids sent. */
  sent: number;
  /** Of those, sent a second time. */
  resent: number;
  /** HTTP status (or `error:<code>`) → count, over every post. */
  statuses: Record<string, number>;
  /** First sends answered 200, not a duplicate. */
  acknowledged: number;
  /** Resends answered 200 as a duplicate. */
  deduplicated: number;
  /** 200 answers with the wrong `duplicate` flag: a first send called a duplicate, or a resend of an acknowledged report called new. */
  wrongFlag: number;
  /** From the first post to the last answer, s. */
  seconds: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Every post, in the order answered. */
  posts: ReportPost[];
}

/** Bytes a simulated download reports per progress step. */
const PROGRESS_STEP = 1 << 20;

/** Report `k` of `of` of a device's transaction: progress reports, the last one `installed`. */
function reportBody(tag: string, device: string, k: number, of: number, version: string): Report {
  const last = k === of - 1;
  return {
    id: `${tag}-${device}-${k}`,
    transaction: `${tag}-tx-${device}`,
    version,
    state: last ? 'installed' : 'downloading',
    ...(last ? {} : { progress: { bytes: (k + 1) * PROGRESS_STEP, total: of * PROGRESS_STEP } }),
    at: new Date().toISOString(),
  };
}

/** Waits until `due` (performance.now() ms), at once when `signal` is aborted. */
async function waitDue(due: number, signal: AbortSignal | undefined): Promise<void> {
  // Short sleeps rather than one long one, so an abort is noticed without a listener per wait.
  while (!signal?.aborted && performance.now() < due) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(50, due - performance.now())));
  }
}

/** Posts every device's reports (round by round, so each device's go in order); returns every post and its answer. */
export async function runReportLoad(opts: ReportLoadOptions): Promise<ReportLoadStats> {
  const url = new URL(opts.url);
  const agent = new Agent({ keepAlive: true });
  // Ids unique to this run, so several runs can report into one server.
  const tag = randomBytes(3).toString('hex');
  const version = opts.version ?? '1.0.0';
  const n = opts.devices.length;
  const total = n * opts.perDevice;
  const gap = total > 0 ? (opts.spreadMs ?? 0) / total : 0;
  const dup = opts.duplicateEvery ?? 0;
  const posts: ReportPost[] = [];
  const t0 = performance.now();
  let next = 0;

  const post = async (dev: LoadDevice, report: Report, resend: boolean): Promise<void> => {
    const start = performance.now();
    const seen: Omit<ReportPost, 'status' | 'ms'> = { device: dev.id, id: report.id, transaction: report.transaction, state: report.state, resend };
    let status: string;
    let duplicate: boolean | undefined;
    try {
      const r = await postJson(agent, url, `/v1/devices/${encodeURIComponent(dev.id)}/reports`, dev.token, JSON.stringify(report), opts.timeoutMs ?? 10_000);
      status = String(r.status);
      if (r.status === 200) duplicate = (JSON.parse(r.text) as { duplicate?: boolean }).duplicate;
    } catch (err) {
      status = `error:${(err as { code?: string }).code ?? 'unknown'}`;
    }
    // Tenths of a millisecond: thousands of posts stay a small JSON document.
    posts.push({ ...seen, status, ...(duplicate !== undefined ? { duplicate } : {}), ms: Math.round((performance.now() - start) * 10) / 10 });
  };
  const lane = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const dev = opts.devices[i % n]!;
      await waitDue(t0 + i * gap, opts.signal);
      const report = reportBody(tag, dev.id, Math.floor(i / n), opts.perDevice, version);
      await post(dev, report, false);
      if (dup > 0 && i % dup === 0) await post(dev, report, true);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, total)) }, lane));
  } finally {
    agent.destroy();
  }
  return reportStats(posts, (performance.now() - t0) / 1000);
}

/** Tallies report posts. */
function reportStats(posts: ReportPost[], seconds: number): ReportLoadStats {
  const statuses: Record<string, number> = {};
  for (const p of posts) statuses[p.status] = (statuses[p.status] ?? 0) + 1;
  const ok = posts.filter((p) => p.status === '200');
  // A resend whose first send got no answer may rightly be the one that stores the report.
  const acked = new Set(ok.filter((p) => !p.resend).map((p) => p.id));
  const sorted = Float64Array.from(posts.map((p) => p.ms)).sort();
  return {
    sent: posts.filter((p) => !p.resend).length,
    resent: posts.filter((p) => p.resend).length,
    statuses,
    acknowledged: ok.filter((p) => !p.resend && p.duplicate === false).length,
    deduplicated: ok.filter((p) => p.resend && p.duplicate === true).length,
    wrongFlag: ok.filter((p) => (p.resend ? acked.has(p.id) && p.duplicate === false : p.duplicate === true)).length,
    seconds,
    latencyMs: { p50: pct(sorted, 50), p99: pct(sorted, 99), max: sorted[sorted.length - 1] ?? NaN },
    posts,
  };
}

/** What the CLI's `run --json` prints: the check-in stats, and the report stats when it posted reports. */
export type LoadRunOutput = CheckinLoadStats & { reports?: ReportLoadStats };

/** A random device-id prefix, so several runs can enroll into one server. */
export function randomPrefix(): string {
  return `load-${randomBytes(3).toString('hex')}-`;
}

const USAGE = `Usage:
  load.js enroll --url URL --enroll-token T --count N --out FILE [--prefix P] [--compatible C] [--channel CH]
  load.js run --url URL --devices FILE [--rate R | --concurrency C] [--seconds S] [--count N]
              [--warmup-seconds W] [--sockets K] [--verify-every K] [--keep-answers]
              [--reports-per-device R [--report-version V] [--report-duplicate-every D]
               [--report-spread-seconds S] [--report-concurrency C]] [--json]

enroll writes {devices: [{id, token}], serverKey} to FILE; run reads it, checks in, and prints
signed answers per second, latency percentiles and status counts (--json: the stats object).
--keep-answers lists each verified sample's directive and times; --reports-per-device also
posts R transaction reports per device meanwhile (every D-th sent twice), spread over S
seconds, and adds their tally and every post as "reports". SIGTERM or SIGINT ends the run
early: no new check-in starts, reports still due go out at once, the stats are printed.
`;

/** One line on a report run, for the CLI. */
function describeReports(r: ReportLoadStats): string {
  return `reports: ${r.sent} sent, ${r.resent} resent; ${r.acknowledged} acknowledged, ${r.deduplicated} de-duplicated, ${r.wrongFlag} wrong duplicate flags; statuses ${JSON.stringify(r.statuses)}; p50 ${r.latencyMs.p50.toFixed(1)} / p99 ${r.latencyMs.p99.toFixed(1)} ms`;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      'enroll-token': { type: 'string' },
      count: { type: 'string' },
      out: { type: 'string' },
      prefix: { type: 'string' },
      compatible: { type: 'string' },
      channel: { type: 'string' },
      devices: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      seconds: { type: 'string' },
      'warmup-seconds': { type: 'string' },
      sockets: { type: 'string' },
      'verify-every': { type: 'string' },
      'keep-answers': { type: 'boolean' },
      'reports-per-device': { type: 'string' },
      'report-version': { type: 'string' },
      'report-duplicate-every': { type: 'string' },
      'report-spread-seconds': { type: 'string' },
      'report-concurrency': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  const num = (name: keyof typeof values): number | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a number, got "${String(v)}"`);
    return n;
  };
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const mode = positionals[0];
  if (!values.url || (mode !== 'enroll' && mode !== 'run')) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (mode === 'enroll') {
    const count = num('count');
    if (!values['enroll-token'] || !count || !values.out) {
      process.stderr.write(`load.js enroll: --enroll-token, --count and --out are required\n${USAGE}`);
      return 2;
    }
    const fleet = await enrollDevices({
      url: values.url,
      enrollToken: values['enroll-token'],
      count,
      ...(values.prefix ? { prefix: values.prefix } : {}),
      ...(values.compatible ? { compatible: values.compatible } : {}),
      ...(values.channel ? { channel: values.channel } : {}),
    });
    await writeFile(values.out, `${JSON.stringify(fleet)}\n`);
    process.stdout.write(`enrolled ${fleet.devices.length} devices into ${values.out}\n`);
    return 0;
  }
  if (!values.devices) {
    process.stderr.write(`load.js run: --devices is required\n${USAGE}`);
    return 2;
  }
  const fleet = JSON.parse(await readFile(values.devices, 'utf8')) as EnrolledFleet;
  const seconds = num('seconds');
  const count = num('count');
  const every = num('verify-every');
  const perDevice = num('reports-per-device');
  // A signal ends the run early but still prints what it measured (a caller stops it when done).
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const checkins = runCheckinLoad({
    url: values.url,
    devices: fleet.devices,
    ...(num('rate') !== undefined ? { rate: num('rate')! } : {}),
    ...(num('concurrency') !== undefined ? { concurrency: num('concurrency')! } : {}),
    ...(seconds !== undefined ? { durationMs: seconds * 1000 } : {}),
    ...(count !== undefined ? { count } : {}),
    ...(num('warmup-seconds') !== undefined ? { warmupMs: num('warmup-seconds')! * 1000 } : {}),
    ...(num('sockets') !== undefined ? { sockets: num('sockets')! } : {}),
    ...(every ? { verify: { serverKey: fleet.serverKey, every, keep: values['keep-answers'] === true } } : {}),
    signal: stop.signal,
  });
  const reports = perDevice
    ? runReportLoad({
        url: values.url,
        devices: fleet.devices,
        perDevice,
        ...(values['report-version'] ? { version: values['report-version'] } : {}),
        ...(num('report-duplicate-every') !== undefined ? { duplicateEvery: num('report-duplicate-every')! } : {}),
        ...(num('report-spread-seconds') !== undefined ? { spreadMs: num('report-spread-seconds')! * 1000 } : {}),
        ...(num('report-concurrency') !== undefined ? { concurrency: num('report-concurrency')! } : {}),
        signal: stop.signal,
      })
    : undefined;
  const [c, r] = await Promise.all([checkins, reports]);
  const stats: LoadRunOutput = { ...c, ...(r ? { reports: r } : {}) };
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(stats)}\n`);
  } else {
    const l = stats.latencyMs;
    process.stdout.write(
      [
        `${stats.answered} signed answers in ${stats.seconds.toFixed(2)} s: ${stats.perSecond.toFixed(0)}/s${stats.targetRate ? ` (asked ${stats.targetRate}/s)` : ''}`,
        `latency ms: mean ${l.mean.toFixed(1)}  p50 ${l.p50.toFixed(1)}  p90 ${l.p90.toFixed(1)}  p99 ${l.p99.toFixed(1)}  max ${l.max.toFixed(1)}`,
        `statuses: ${JSON.stringify(stats.statuses)}; most in flight ${stats.maxInFlight}; late starts ${stats.lateStarts}`,
        `verified: ${stats.verified.checked} sampled answers, ${stats.verified.failed} failed${stats.verified.firstError ? ` (${stats.verified.firstError})` : ''}`,
        ...(stats.reports ? [describeReports(stats.reports)] : []),
      ].join('\n') + '\n',
    );
  }
  return 0;
}

if (process.argv[1] && basename(process.argv[1]) === 'load.js' && import.meta.url.endsWith('/fleet/load.js')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`load.js: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
