/**
 * Load (issue 7): a few thousand enrolled devices check in without pause against one real
 * `ota-server` on this machine while a release of tens of MiB uploads through `ota-release
 * upload` and is published, and while the devices post transaction reports, some of them twice
 * on purpose (a device retrying after a lost answer). The load generator (scripts/fleet/load.ts)
 * runs in its own process, so neither the server nor this harness shares its event loop; it is
 * stopped with SIGTERM once every device has checked in after the publish. Then, from the
 * server with an ops token: no 5xx and no transport error, the upload stored and published,
 * every report stored exactly once, and sampled signed answers verified, each one given after
 * the publish an `update` to the new release.
 */
import { execa, type ResultPromise } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { enrollDevices, type LoadRunOutput, type ReportPost, type VerifiedAnswer } from '../fleet/load.js';
import { api, fleet } from '../fleet/server.js';
import { percentile } from '../bench/util.js';
import { makeRow, type Row } from './results.js';
import { RELEASE_CLI, ROOT, makeReleaseKey, pool, rawRelease, since, startServer, workDir, type Release, type Server } from './world.js';

/** Options of the load part. */
export interface LoadOptions {
  want: (id: string) => boolean;
  fast: boolean;
  log: (line: string) => void;
}

const LOAD_CLI = join(ROOT, 'dist', 'scripts', 'fleet', 'load.js');
/** The release uploaded under load. */
const VERSION = '2.0.0';
/** The version the devices' reports are about (an earlier rollout they are finishing). */
const REPORTED = '1.0.0';
/** Devices enroll without a channel, so they follow this one. */
const CHANNEL = 'stable';
const ROW_CHECKINS = 'load:checkins-during-upload';
const ROW_REPORTS = 'load:reports-during-upload';

/** How big a run is. */
interface Plan {
  mode: 'fast' | 'full';
  devices: number;
  /** Check-ins in flight at once (closed loop: each device in turn, round-robin). */
  inFlight: number;
  bundleMiB: number;
  reportsPerDevice: number;
  /** Every n-th report is sent a second time. */
  duplicateEvery: number;
  /** Reports in flight at once. */
  reportLanes: number;
  /** The reports' first sends are spread over this long, so that they overlap the upload. */
  reportSpreadS: number;
  /** Check-ins go on at least this long after the publish. */
  afterPublishS: number;
  verifyEvery: number;
  /** How long waiting for the devices may take before it counts as a failure. */
  waitS: number;
  /** The generator stops by itself after this long whatever happens (a bound, not the plan). */
  maxS: number;
}

const PLANS: Record<'fast' | 'full', Plan> = {
  fast: { mode: 'fast', devices: 300, inFlight: 64, bundleMiB: 8, reportsPerDevice: 3, duplicateEvery: 10, reportLanes: 8, reportSpreadS: 4, afterPublishS: 2, verifyEvery: 10, waitS: 30, maxS: 120 },
  full: { mode: 'full', devices: 3000, inFlight: 128, bundleMiB: 48, reportsPerDevice: 3, duplicateEvery: 10, reportLanes: 32, reportSpreadS: 12, afterPublishS: 4, verifyEvery: 25, waitS: 120, maxS: 900 },
};

/** A CLI step timed on the wall clock (ms since the epoch, comparable with the generator's). */
interface Step {
  ok: boolean;
  startAt: number;
  endAt: number;
  /** stderr of a failed step. */
  error?: string;
}

/** What one run measured. */
interface Run {
  plan: Plan;
  release: Release;
  out: LoadRunOutput;
  upload: Step & { sha256?: string };
  publish: Step;
  /** Devices that checked in between the generator's start and the upload's, and after the publish. */
  seenBefore: number;
  seenAfter: number;
  /** Lines the server logged at level error or above. */
  serverErrors: string[];
  t0: number;
}

/** The load part: one run, seen as a check-in row and a report row. */
export async function runLoad(opts: LoadOptions): Promise<Row[]> {
  if (!opts.want(ROW_CHECKINS) && !opts.want(ROW_REPORTS)) return [];
  const plan = PLANS[opts.fast ? 'fast' : 'full'];
  const { dir, cleanup } = await workDir('load');
  try {
    const t0 = Date.now();
    const key = await makeReleaseKey(join(dir, 'keys'));
    const release = await rawRelease(join(dir, 'release'), key, { version: VERSION, healthy: true, bulk: plan.bundleMiB << 20 });
    const server = await startServer(dir, [key.pubPath]);
    try {
      const run = await drive(dir, server, release, plan, t0, opts.log);
      const rows: Row[] = [];
      if (opts.want(ROW_CHECKINS)) rows.push(checkinRow(run));
      if (opts.want(ROW_REPORTS)) rows.push(await reportRow(run, server));
      return rows;
    } finally {
      await server.proc.stop();
    }
  } finally {
    await cleanup();
  }
}

/** Enrolls the fleet, runs the generator, uploads and publishes under it, stops it. */
async function drive(dir: string, server: Server, release: Release, plan: Plan, t0: number, log: (l: string) => void): Promise<Run> {
  const url = server.proc.url;
  log(`load: enrolling ${plan.devices} devices`);
  const devices = await enrollDevices({ url, enrollToken: server.tokens.enroll, count: plan.devices });
  const devicesFile = join(dir, 'devices.json');
  await writeFile(devicesFile, JSON.stringify(devices));
  log(`load: ${plan.devices} devices checking in (${plan.inFlight} in flight) and posting ${plan.reportsPerDevice} reports each`);
  const genStart = Date.now();
  const gen = startGenerator(url, devicesFile, plan);
  let exited = false;
  void gen.finally(() => (exited = true));
  try {
    const deadline = (): number => Date.now() + plan.waitS * 1000;
    const seenBefore = await waitSeen(server, genStart, plan.devices, deadline(), () => exited);
    log(`load: uploading ${(release.size / 2 ** 20).toFixed(0)} MiB (${VERSION}) and publishing it to ${CHANNEL}`);
    const upload = await uploadRelease(server, release);
    const publish = await ota(server, ['publish', VERSION, '--product', 'gateway', '--channel', CHANNEL]);
    const publishedAt = publish.endAt;
    // Every device must have checked in after the publish, and the reports must have had their time.
    const seenAfter = await waitSeen(server, publishedAt, plan.devices, deadline(), () => exited);
    await sleep(Math.max(0, publishedAt + plan.afterPublishS * 1000 - Date.now(), genStart + plan.reportSpreadS * 1000 - Date.now()));
    gen.kill('SIGTERM');
    const r = await gen;
    if (r.exitCode !== 0) throw new Error(`the load generator exited ${r.exitCode ?? r.signal}: ${String(r.stderr).slice(0, 2000)}`);
    return { plan, release, out: JSON.parse(String(r.stdout)) as LoadRunOutput, upload, publish, seenBefore, seenAfter, serverErrors: serverErrors(server.proc.log), t0 };
  } finally {
    if (!exited) {
      gen.kill('SIGKILL');
      await gen;
    }
  }
}

/** Starts the load generator CLI: closed-loop check-ins and paced reports, until SIGTERM (or `maxS`). */
function startGenerator(url: string, devicesFile: string, plan: Plan): ResultPromise<{ reject: false; stdin: 'ignore' }> {
  const args = [
    ...['run', '--url', url, '--devices', devicesFile, '--concurrency', String(plan.inFlight), '--seconds', String(plan.maxS)],
    ...['--verify-every', String(plan.verifyEvery), '--keep-answers'],
    ...['--reports-per-device', String(plan.reportsPerDevice), '--report-version', REPORTED, '--report-duplicate-every', String(plan.duplicateEvery)],
    ...['--report-spread-seconds', String(plan.reportSpreadS), '--report-concurrency', String(plan.reportLanes), '--json'],
  ];
  // After SIGTERM the generator still verifies its sample of signed answers (thousands, with
  // openpgp.js) before it prints its stats: give it time instead of execa's default 5 s.
  return execa('node', [LOAD_CLI, ...args], { reject: false, stdin: 'ignore', forceKillAfterDelay: 120_000 });
}

/** Polls the fleet (ops token) until `count` devices were seen after `after` (ms since the epoch); returns how many were. */
async function waitSeen(server: Server, after: number, count: number, deadline: number, gone: () => boolean): Promise<number> {
  let seen = 0;
  while (Date.now() < deadline && !gone()) {
    const devices = await fleet(server.proc.url, server.tokens.ops);
    seen = devices.filter((d) => d.lastSeen !== null && Date.parse(d.lastSeen) > after).length;
    if (seen >= count) break;
    await sleep(500);
  }
  return seen;
}

/** Runs `ota-release ARGS --server URL --json` with the ops token. */
async function ota(server: Server, args: string[]): Promise<Step & { stdout: string }> {
  const startAt = Date.now();
  const r = await execa('node', [RELEASE_CLI, ...args, '--server', server.proc.url, '--json'], { env: { OTA_TOKEN: server.tokens.ops }, reject: false });
  const endAt = Date.now();
  const ok = r.exitCode === 0;
  return { ok, startAt, endAt, stdout: String(r.stdout), ...(ok ? {} : { error: String(r.stderr).trim() }) };
}

/** Uploads the release with `ota-release upload`; the answer's sha256 tells what the server stored. */
async function uploadRelease(server: Server, release: Release): Promise<Step & { sha256?: string }> {
  const { stdout, ...step } = await ota(server, ['upload', release.path]);
  return step.ok ? { ...step, sha256: (JSON.parse(stdout) as { sha256: string }).sha256 } : step;
}

/** The server's log lines at level error (50) or above. */
function serverErrors(log: string): string[] {
  return log.split('\n').filter((line) => {
    try {
      return ((JSON.parse(line) as { level?: number }).level ?? 0) >= 50;
    } catch {
      return false;
    }
  });
}

/** Statuses that are not 200, split into 5xx and transport errors (`error:*`, `not-started`) and the rest. */
function badStatuses(statuses: Record<string, number>): { s5xx: number; errors: number; other: number; text: string } {
  const bad = Object.entries(statuses).filter(([k]) => k !== '200');
  const sum = (f: (k: string) => boolean): number => bad.filter(([k]) => f(k)).reduce((a, [, n]) => a + n, 0);
  const s5xx = sum((k) => /^5\d\d$/.test(k));
  const errors = sum((k) => !/^\d{3}$/.test(k));
  return { s5xx, errors, other: sum((k) => /^\d{3}$/.test(k)) - s5xx, text: JSON.stringify(Object.fromEntries(bad)) };
}

/** Failures every row shares: the server logged errors, the upload or publish failed. */
function runFailures(run: Run): string[] {
  const f: string[] = [];
  if (!run.upload.ok) f.push(`the upload failed: ${run.upload.error ?? ''}`);
  else if (run.upload.sha256 !== run.release.sha256) f.push(`the upload stored sha256 ${run.upload.sha256 ?? '?'}, not the bundle's ${run.release.sha256}`);
  if (!run.publish.ok) f.push(`the publish failed: ${run.publish.error ?? ''}`);
  if (run.serverErrors.length) f.push(`the server logged ${run.serverErrors.length} error(s), first: ${run.serverErrors[0]!.slice(0, 300)}`);
  return f;
}

/** What the sampled, verified answers show around the upload and the publish. */
function sampleChecks(run: Run): { failures: string[]; afterPublish: number; duringUpload: VerifiedAnswer[] } {
  const answers = run.out.verified.answers ?? [];
  const failures: string[] = [];
  const after = answers.filter((a) => a.sentAt > run.publish.endAt);
  const wrong = after.filter((a) => a.directive !== 'update' || a.version !== VERSION || a.sha256 !== run.release.sha256);
  if (wrong.length) failures.push(`${wrong.length} of ${after.length} sampled answers after the publish did not offer ${VERSION} (first: ${JSON.stringify(wrong[0])})`);
  if (after.length === 0) failures.push('no sampled answer was sent after the publish');
  const early = answers.filter((a) => a.answeredAt < run.publish.startAt && a.directive !== 'none');
  if (early.length) failures.push(`${early.length} sampled answers before the publish offered something (first: ${JSON.stringify(early[0])})`);
  const duringUpload = answers.filter((a) => a.sentAt < run.upload.endAt && a.answeredAt > run.upload.startAt);
  if (duringUpload.length === 0) failures.push('no sampled check-in was in flight during the upload');
  if (run.out.verified.failed) failures.push(`${run.out.verified.failed} of ${run.out.verified.checked} sampled answers failed verification: ${run.out.verified.firstError ?? ''}`);
  return { failures, afterPublish: after.length, duringUpload };
}

/** The check-in row: status counts, throughput, latency, the upload, the directives. */
function checkinRow(run: Run): Row {
  const { plan, out } = run;
  const bad = badStatuses(out.statuses);
  const samples = sampleChecks(run);
  const failures = [...runFailures(run), ...samples.failures];
  if (bad.s5xx || bad.errors || bad.other) failures.push(`check-ins not answered 200: ${bad.text}`);
  if (run.seenBefore < plan.devices) failures.push(`only ${run.seenBefore} of ${plan.devices} devices checked in before the upload started (within ${plan.waitS} s)`);
  if (run.seenAfter < plan.devices) failures.push(`only ${run.seenAfter} of ${plan.devices} devices checked in after the publish (within ${plan.waitS} s)`);
  const l = out.latencyMs;
  const during = samples.duringUpload.map((a) => a.answeredAt - a.sentAt);
  const uploadS = (run.upload.endAt - run.upload.startAt) / 1000;
  return makeRow({
    id: ROW_CHECKINS,
    part: 'load',
    what: `${plan.devices} enrolled devices checking in without pause (load generator in its own process, per-device tokens, fresh nonces) while a ${plan.bundleMiB} MiB release uploads with ota-release upload and is published`,
    tried: out.sent,
    held: out.answered,
    figures:
      `${plan.devices} devices, ${out.sent} check-ins at ${out.perSecond.toFixed(0)}/s (${plan.inFlight} in flight), p50 ${l.p50.toFixed(0)} / p99 ${l.p99.toFixed(0)} ms ` +
      `(p99 ${percentile(during, 99).toFixed(0)} ms over ${during.length} sampled during the upload); 5xx ${bad.s5xx}, errors ${bad.errors}; ` +
      `upload ${uploadS.toFixed(1)} s (${(run.release.size / 2 ** 20 / uploadS).toFixed(1)} MiB/s)${run.upload.ok ? '' : ' FAILED'}, publish ${((run.publish.endAt - run.publish.startAt) / 1000).toFixed(1)} s; ` +
      `${out.verified.checked} answers verified, ${samples.afterPublish} after the publish all update ${VERSION}; ${run.seenAfter}/${plan.devices} devices checked in after it`,
    failures,
    seconds: since(run.t0),
    mode: plan.mode,
  });
}

/** A device's stored reports as its history shows them. */
interface StoredReport {
  id: string;
  transaction: string;
  state: string;
}

/** Every stored report of the run's devices, from their histories (ops token). */
async function storedReports(server: Server, devices: readonly string[]): Promise<Map<string, StoredReport[]>> {
  const byDevice = new Map<string, StoredReport[]>();
  await pool(devices, 4, async (id) => {
    const h = await api<{ reports: StoredReport[] }>(server.proc.url, server.tokens.ops, 'GET', `/v1/devices/${encodeURIComponent(id)}`);
    byDevice.set(id, h.reports);
  });
  return byDevice;
}

/** Compares what was posted with what the server stored: per report id, lost, stored twice, altered, unexpected. */
function reconcile(posts: readonly ReportPost[], stored: ReadonlyMap<string, StoredReport[]>): { failures: string[]; storedOnce: number; bad: Set<string> } {
  const sent = new Map(posts.filter((p) => !p.resend).map((p) => [p.id, p]));
  const count = new Map<string, number>();
  const bad = new Set<string>();
  const failures: string[] = [];
  for (const [device, reports] of stored) {
    for (const r of reports) {
      count.set(r.id, (count.get(r.id) ?? 0) + 1);
      const p = sent.get(r.id);
      if (!p || p.device !== device) failures.push(`device ${device} has a report ${r.id} that was never sent by it`);
      else if (p.transaction !== r.transaction || p.state !== r.state) {
        bad.add(r.id);
        failures.push(`report ${r.id} stored as ${r.transaction}/${r.state}, sent as ${p.transaction}/${p.state}`);
      }
    }
  }
  for (const id of sent.keys()) {
    const n = count.get(id) ?? 0;
    if (n === 1) continue;
    bad.add(id);
    failures.push(n === 0 ? `report ${id} was lost: sent, not in its device's history` : `report ${id} stored ${n} times`);
  }
  // A post not answered 200 fails its report too (a wrong duplicate flag is the generator's tally).
  for (const p of posts) if (p.status !== '200') bad.add(p.id);
  return { failures: capped(failures), storedOnce: [...sent.keys()].filter((id) => count.get(id) === 1).length, bad };
}

/** The first `most` lines and a count of the rest: a broken server must not put thousands of lines into the doc. */
function capped(lines: string[], most = 20): string[] {
  return lines.length <= most ? lines : [...lines.slice(0, most), `... and ${lines.length - most} more like these`];
}

/** The report row: every report sent stored exactly once, the resent ones de-duplicated. */
async function reportRow(run: Run, server: Server): Promise<Row> {
  const r = run.out.reports;
  if (!r) throw new Error('the load generator printed no report stats');
  const stored = await storedReports(server, [...new Set(r.posts.map((p) => p.device))]);
  const check = reconcile(r.posts, stored);
  const bad = badStatuses(r.statuses);
  const failures = [...runFailures(run), ...check.failures];
  if (bad.s5xx || bad.errors || bad.other) failures.push(`report posts not answered 200: ${bad.text}`);
  if (r.wrongFlag) failures.push(`${r.wrongFlag} answers had the wrong "duplicate" flag`);
  if (r.sent !== run.plan.devices * run.plan.reportsPerDevice) failures.push(`${r.sent} reports sent of ${run.plan.devices * run.plan.reportsPerDevice} planned`);
  const held = r.posts.filter((p) => !p.resend && !check.bad.has(p.id)).length;
  return makeRow({
    id: ROW_REPORTS,
    part: 'load',
    what: `the same ${run.plan.devices} devices posting ${run.plan.reportsPerDevice} transaction reports each during the check-ins and the upload, every ${run.plan.duplicateEvery}th sent twice; each checked in its device's history`,
    tried: r.sent,
    held,
    figures:
      `${r.sent} reports + ${r.resent} resent on purpose: ${check.storedOnce} stored exactly once, ${r.sent - check.storedOnce} lost or stored twice, ${r.deduplicated} answered as duplicates; ` +
      `5xx ${bad.s5xx}, errors ${bad.errors}; p50 ${r.latencyMs.p50.toFixed(0)} / p99 ${r.latencyMs.p99.toFixed(0)} ms over ${r.seconds.toFixed(1)} s`,
    failures,
    seconds: since(run.t0),
    mode: run.plan.mode,
  });
}
