#!/usr/bin/env node
/**
 * `npm run test:device`: the whole device in qemu. A Debian 12 image (image.ts: debootstrap,
 * docs/AGENT.md's set-up block, GRUB on a BIOS disk with two root slots and a data partition)
 * boots under qemu-system-x86_64 (TCG) with systemd as PID 1 and the agent's .deb as its
 * systemd unit, enrolled with a real `ota-server` on the host. Scenarios:
 *
 *   update      a release installs, `systemctl reboot`, GRUB boots the new slot, the systemd
 *               health check passes, the release commits; the server shows it
 *   health      the release's service fails: systemd restarts it, the agent rolls back and
 *               reboots; the server shows health-check:demo-app
 *   panic       the release's kernel panics: GRUB falls back after MAX_TRIES; boot-failed
 *   hang        the release hangs at boot: the watchdog resets, GRUB falls back; boot-failed
 *   power NAME  real power loss: qemu SIGKILLed right after the durable write NAME (its kind,
 *               its text without ids or numbers, its ordinal in that class: points.ts), or
 *               seconds after it (the reboot's points); the same disk boots again and must end
 *               committed or rolled back, bootable, its store intact, one final report
 *
 * One line per scenario and point, then `N passed, M failed`; exit 1 on any failure. Two
 * machines at a time (`--jobs N`: N), the longest first. The points are fixed names
 * (FULL_POINTS, `--ci`: CI_POINTS, the update and those cuts only), so the cuts run beside the
 * update, and the update checks that each is a write of its own trace (the `points` line).
 * `--only a,b`: those scenarios. `--points N`: N points picked from the update's trace (without
 * `update`: the last saved one). `--points a#1,b#2+8` (or `--cuts`): exactly those named points.
 * `--stop-at <ISO time>`: no machine run starts after it (those left print NOT RUN).
 */
import { createServer } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { ServerProcess, api, createToken } from '../fleet/server.js';
import { agentDeb, buildImage, CACHE, FACTORY_VERSION, type DeviceImage } from './image.js';
import { BAD_APP, GOOD, HANG, PANIC, releaseBundle, type Release } from './releases.js';
import { REPO } from './util.js';
import { Vm, type TraceLine } from './vm.js';
import { checkStore } from './store-check.js';
import { CI_POINTS, FULL_POINTS, namedTrace, parsePoint, pickPoints, pointName, PointWatch, type CutPoint } from './points.js';

const t0 = Date.now();
function log(m: string): void {
  process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
}

interface ReportView {
  id: string;
  version: string;
  state: string;
  outcome: string | null;
  reason: string | null;
}
interface DeviceView {
  device: { id: string; version: string | null; slot: string | null; transaction: unknown; lastOutcome: { outcome: string; reason: string | null; version: string } | null };
  reports: ReportView[];
}

/** The host side: the server, its tokens, the releases on their channels. */
interface Host {
  image: DeviceImage;
  server: ServerProcess;
  url: string;
  guestUrl: string;
  ops: string;
  enroll: string;
  runs: string;
}

/** What a scenario saw. */
interface Result {
  name: string;
  ok: boolean;
  seen: string;
  seconds: number;
}

class Fail extends Error {}
function check(ok: boolean, what: string): void {
  if (!ok) throw new Fail(what);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function view(host: Host, id: string): Promise<DeviceView | undefined> {
  return api<DeviceView>(host.url, host.ops, 'GET', `/v1/devices/${id}`).catch(() => undefined);
}

/** Polls the server until `done` holds for the device (or the machine stops, or time runs out). */
async function waitServer(host: Host, vm: Vm, id: string, seconds: number, done: (v: DeviceView) => boolean): Promise<DeviceView | undefined> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const v = await view(host, id);
    if (v && done(v)) return v;
    if (!vm.running) return v && done(v) ? v : undefined;
    await sleep(2000);
  }
  return undefined;
}

/** The final reports (with an outcome) of `version`, distinct by id. */
function finals(v: DeviceView | undefined, version: string): ReportView[] {
  const seen = new Map<string, ReportView>();
  for (const r of v?.reports ?? []) if (r.version === version && r.outcome !== null) seen.set(r.id, r);
  return [...seen.values()];
}

function describe(v: DeviceView | undefined): string {
  if (!v) return 'server: device unknown';
  const o = v.device.lastOutcome;
  return `server: v${v.device.version ?? '-'} slot ${v.device.slot ?? '-'}, last outcome ${o ? `${o.version} ${o.outcome}${o.reason ? ` (${o.reason})` : ''}` : 'none'}`;
}

/** Every machine made, so that an interrupted run leaves no qemu behind. */
const machines = new Set<Vm>();
let serverToStop: ServerProcess | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void Promise.allSettled([...machines].map((m) => (m.running ? m.cut() : undefined)))
      .then(() => serverToStop?.stop())
      .finally(() => {
        process.stderr.write(`device test: interrupted (${sig})\n`);
        process.exit(130);
      });
  });
}

async function newVm(host: Host, name: string, channel: string): Promise<{ vm: Vm; id: string }> {
  const id = `qemu-${name}`;
  const vm = await Vm.create(join(host.runs, name), host.image, { DEVICE_ID: id, SERVER_URL: host.guestUrl, ENROLL_TOKEN: host.enroll, CHANNEL: channel, POLL_SECONDS: '5', FACTORY_VERSION });
  machines.add(vm);
  return { vm, id };
}

/** Up to this long for one machine's whole scenario (TCG boots take about a minute each). */
const VM_LIMIT = 1500;

/** A release installs, reboots for real, commits; or, for a bad release, rolls back as expected. */
async function releaseScenario(host: Host, name: string, r: Release, expect: { outcome: 'success' | 'failure'; reason?: string; boots: RegExp }, traceOut?: TraceLine[]): Promise<string> {
  const { vm, id } = await newVm(host, name, r.name);
  vm.start(VM_LIMIT);
  try {
    const v = await waitServer(host, vm, id, VM_LIMIT, (x) => finals(x, r.version).length > 0 && x.device.transaction === null);
    // A little longer: a second final report would show up now (and the boot after a rollback settles).
    if (v) await sleep(10_000);
    await vm.cut();
    const after = await view(host, id);
    const boots = (await vm.boots()).join(' ');
    const f = finals(after, r.version);
    const env = await vm.grubenv();
    const envText = `ORDER="${env.ORDER}" A_TRY=${env.A_TRY} B_TRY=${env.B_TRY} A_OK=${env.A_OK} B_OK=${env.B_OK}`;
    const seen = `boots ${boots || 'none'}; ${describe(after)}; ${f.length} final report(s); grubenv ${envText}`;
    check(f.length === 1, `${seen}: expected exactly one final report of ${r.version}`);
    check(f[0]!.outcome === expect.outcome && (expect.reason === undefined || f[0]!.reason === expect.reason), `${seen}: expected ${expect.outcome}${expect.reason ? ` (${expect.reason})` : ''}`);
    check(expect.boots.test(boots), `${seen}: boots do not match ${expect.boots}`);
    // Back on the factory system after a rollback, the server shows the factory's version.
    check(expect.outcome === 'success' ? after?.device.version === r.version : after?.device.version === FACTORY_VERSION, `${seen}: expected the server to show v${expect.outcome === 'success' ? r.version : FACTORY_VERSION}`);
    const store = await checkStore(vm, host.image);
    check(store.ok, `${seen}; store: ${store.detail}`);
    if (traceOut) traceOut.push(...vm.trace);
    return `${seen}; store ${store.detail}; ${vm.trace.length} durable writes${phases(vm.trace)}`;
  } finally {
    if (vm.running) await vm.cut();
  }
}

/** Where a machine's time went, from its trace: first write (boot), the longest pause (the reboot), the last write. */
function phases(trace: readonly TraceLine[]): string {
  if (trace.length === 0) return '';
  let gap = 0;
  let gapAt = 0;
  for (let i = 1; i < trace.length; i++) if (trace[i]!.at - trace[i - 1]!.at > gap) [gap, gapAt] = [trace[i]!.at - trace[i - 1]!.at, trace[i - 1]!.at];
  const s = (ms: number) => (ms / 1000).toFixed(0);
  return ` (first at ${s(trace[0]!.at)} s after power-on, longest pause ${s(gap)} s from ${s(gapAt)} s, last at ${s(trace.at(-1)!.at)} s)`;
}

/** The agent's line when it starts checking in: it got through boot, recovery and health checks. */
const CHECKING_IN = /ota-agent\[\d+\]: update server \S+: checking in now/;

/** A power cut at `p` during the good release's update, then the same disk boots again. */
async function powerScenario(host: Host, name: string, p: CutPoint): Promise<string> {
  const { vm, id } = await newVm(host, name, 'power');
  let cutAt = '';
  let cutSec = 0;
  let on = Date.now();
  const watch = new PointWatch(p);
  vm.onTrace((l) => {
    if (!watch.hit(l) || cutAt) return;
    cutAt = `write ${l.n}: ${l.kind} ${l.what}`.slice(0, 70);
    cutSec = (Date.now() - on) / 1000 + p.delayMs / 1000;
    const go = () => void vm.cut();
    if (p.delayMs > 0) setTimeout(go, p.delayMs);
    else go();
  });
  vm.start(VM_LIMIT);
  try {
    // Until the cut; a run that ends its update without reaching write n is stopped too.
    const done = waitServer(host, vm, id, VM_LIMIT, (x) => finals(x, GOOD.version).length > 0 && x.device.transaction === null);
    await Promise.race([vm.waitOff(), done.then(async () => { if (!cutAt) { await sleep(20_000); await vm.cut(); } })]);
    await vm.waitOff();
    check(cutAt !== '', `the update ended before ${p.name} (it made ${vm.trace.length} durable writes); boots ${(await vm.boots()).join(' ')}`);
    const bootsBefore = (await vm.boots()).length;
    const consoleBefore = (await vm.console()).length;
    // Power on again: the same disk. Done when the update has its final report and the agent,
    // after this power-on, got through its boot to checking in.
    on = Date.now();
    vm.start(VM_LIMIT);
    const v = await waitServer(host, vm, id, VM_LIMIT, (x) => finals(x, GOOD.version).length > 0 && x.device.transaction === null);
    const deadline = Date.now() + 300_000;
    while (v && vm.running && Date.now() < deadline && !CHECKING_IN.test((await vm.console()).slice(consoleBefore))) await sleep(2000);
    // A second final report would arrive now.
    if (v) await sleep(8_000);
    await vm.cut();
    const after = await view(host, id);
    const boots = await vm.boots();
    const f = finals(after, GOOD.version);
    const env = await vm.grubenv();
    const up = CHECKING_IN.test((await vm.console()).slice(consoleBefore));
    const again = ((Date.now() - on) / 1000).toFixed(0);
    const seen = `cut after ${p.name} (${cutAt}${p.delayMs ? `, +${p.delayMs / 1000} s` : ''}); boots ${boots.slice(0, bootsBefore).join(' ')} | ${boots.slice(bootsBefore).join(' ')}; ${describe(after)}; ${f.length} final report(s); ORDER="${env.ORDER}"`;
    check(boots.length > bootsBefore && up, `${seen}: after the cut the device did not come up to check in again`);
    check(f.length === 1, `${seen}: expected exactly one final report`);
    check(f[0]!.outcome !== 'success' || after?.device.version === GOOD.version, `${seen}: committed on the server but the device runs ${after?.device.version}`);
    const store = await checkStore(vm, host.image);
    check(store.ok, `${seen}; store: ${store.detail}`);
    return `${seen}; ${f[0]!.outcome === 'success' ? 'committed' : `rolled back (${f[0]!.reason})`}; store ${store.detail}; cut ${cutSec.toFixed(0)} s after power-on, settled ${again} s after the next`;
  } finally {
    if (vm.running) await vm.cut();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { ci: { type: 'boolean' }, only: { type: 'string' }, points: { type: 'string' }, jobs: { type: 'string' }, cuts: { type: 'string' }, 'stop-at': { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('Usage: node dist/scripts/device/test.js [--ci] [--only update,health,panic,hang,power] [--points N | --points NAME[+S],...] [--jobs N] [--stop-at ISO-TIME] [--keep]\n');
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error('the device test needs root (debootstrap, chroot)');
  const only = values.only ? new Set(values.only.split(',')) : undefined;
  const want = (s: string) => !only || only.has(s);
  // --points N: N points picked from the update's trace; --points/--cuts a,b: exactly those named points.
  const list = values.cuts ?? (values.points !== undefined && !/^\d+$/.test(values.points) ? values.points : undefined);
  const named = list?.split(',').map(parsePoint);
  const pointCount = named ? named.length : values.points !== undefined ? Number(values.points) : undefined;
  // Without a count the points are fixed names (chosen once from a trace), so the cuts need not wait for the update.
  const fixed = named ?? (pointCount === undefined ? (values.ci ? CI_POINTS : FULL_POINTS).map(parsePoint) : undefined);
  const lanes = Number(values.jobs ?? 2);
  if (!Number.isInteger(lanes) || lanes < 1) throw new Error(`--jobs wants a whole number of machines at a time, 1 or more, not ${values.jobs}`);
  const stopAt = values['stop-at'] === undefined ? Infinity : Date.parse(values['stop-at']);
  if (Number.isNaN(stopAt)) throw new Error(`--stop-at wants an ISO time such as 2026-12-05T04:35:00Z, not ${values['stop-at']}`);
  const image = await buildImage(await agentDeb(), log);
  const runs = await mkdtemp(join(CACHE, 'run-'));
  const key = image.key.pub;
  const port = await freePort();
  const data = join(runs, 'server-data');
  await mkdir(data, { recursive: true });
  const server = await ServerProcess.start({ data, releaseKeys: [key], port, args: ['--poll-interval', '5', '--public-url', `http://10.0.2.2:${port}`] });
  serverToStop = server;
  const host: Host = { image, server, url: server.url, guestUrl: `http://10.0.2.2:${port}`, ops: await createToken(data, 'ops'), enroll: await createToken(data, 'enroll'), runs };
  const results: Result[] = [];
  const say = (r: Result) => {
    results.push(r);
    process.stdout.write(`${r.ok ? 'PASS' : 'FAIL'} ${r.name} (${r.seconds.toFixed(0)} s): ${r.seen}\n`);
  };
  const notRun: string[] = [];
  const attempt = async (name: string, fn: () => Promise<string>) => {
    const s = Date.now();
    if (s > stopAt) {
      notRun.push(name);
      process.stdout.write(`NOT RUN ${name}: past --stop-at\n`);
      return;
    }
    try {
      say({ name, ok: true, seen: await fn(), seconds: (Date.now() - s) / 1000 });
    } catch (err) {
      say({ name, ok: false, seen: err instanceof Error ? err.message : String(err), seconds: (Date.now() - s) / 1000 });
    }
  };
  try {
    const releases = [GOOD, ...(want('health') && !values.ci ? [BAD_APP] : []), ...(want('panic') && !values.ci ? [PANIC] : []), ...(want('hang') && !values.ci ? [HANG] : [])];
    for (const r of releases) {
      const b = await releaseBundle(image, r);
      const channels = r === GOOD ? ['good', 'power'] : [r.name];
      for (const [i, ch] of channels.entries()) {
        const args = i === 0 ? ['upload', b, '--server', host.url, '--channel', ch] : ['publish', r.version, '--product', 'gateway', '--server', host.url, '--channel', ch];
        const u = await execa('node', [join(REPO, 'dist', 'release', 'cli.js'), ...args], { reject: false, env: { OTA_TOKEN: host.ops } });
        if (u.exitCode !== 0) throw new Error(`ota-release ${args[0]} ${r.version} to ${ch}: ${String(u.stderr)}`);
      }
      log(`release ${r.version} (${r.name}) on the server`);
    }
    const golden: TraceLine[] = [];
    const jobs: { name: string; run: () => Promise<string> }[] = [];
    jobs.push({ name: 'update', run: () => releaseScenario(host, 'update', GOOD, { outcome: 'success', boots: /^A1 B1$/ }, golden) });
    if (want('hang') && !values.ci) jobs.push({ name: 'hang', run: () => releaseScenario(host, 'hang', HANG, { outcome: 'failure', reason: 'boot-failed', boots: /^A1 B1 B2 B3 A1$/ }) });
    if (want('panic') && !values.ci) jobs.push({ name: 'panic', run: () => releaseScenario(host, 'panic', PANIC, { outcome: 'failure', reason: 'boot-failed', boots: /^A1 B1 B2 B3 A1$/ }) });
    if (want('health') && !values.ci) jobs.push({ name: 'health', run: () => releaseScenario(host, 'health', BAD_APP, { outcome: 'failure', reason: 'health-check:demo-app', boots: /^A1 B1 A1$/ }) });
    // `lanes` machines at a time (2 unless --jobs), the longest first. Named points (the default) join the
    // queue at once; points picked from a trace (--points N) join it when the update's trace is there.
    const work: (() => Promise<void>)[] = [];
    let updatePending = true;
    const savedTrace = join(CACHE, 'update-trace.json');
    const powerJob = (p: CutPoint) => () => attempt(`power ${p.name}`, () => powerScenario(host, `power-${p.name.replace(/[^A-Za-z0-9._-]+/g, '.')}`, p));
    const withPower = want('power') && (pointCount === undefined || pointCount > 0);
    // Without `update` in --only, points picked by count come from the last update's saved trace.
    const runUpdate = want('update') || (withPower && !fixed && !existsSync(savedTrace));
    work.push(async () => {
      const update = jobs[0]!;
      if (runUpdate) await attempt(update.name, update.run);
      updatePending = false;
      if (runUpdate && golden.length > 0) await writeFile(savedTrace, JSON.stringify(golden, null, 1));
      if (runUpdate && golden.length > 0 && fixed) {
        // The fixed points must be writes this agent makes: each is in the update's own trace.
        const names = namedTrace(golden).map((c) => pointName(c.cls, c.ordinal));
        const have = new Set(names);
        const missing = fixed.filter((p) => !have.has(pointName(p.cls, p.ordinal)));
        log(`update trace: ${golden.length} durable writes; ${names.map((n, i) => `${i + 1} ${n}`).join(', ')}`);
        say({ name: 'points', ok: missing.length === 0, seen: missing.length ? `not in the update's trace: ${missing.map((p) => p.name).join(', ')}` : `all ${fixed.length} cut points are writes of the update's trace (${golden.length} writes)`, seconds: 0 });
      }
      if (!withPower || fixed) return;
      if (!runUpdate) {
        golden.push(...(JSON.parse(await readFile(savedTrace, 'utf8')) as TraceLine[]));
        log(`power cuts from the saved trace of an earlier update run (${savedTrace})`);
      } else if (golden.length === 0) {
        say({ name: 'power', ok: false, seen: 'no durable-write trace from the update scenario: no cut points', seconds: 0 });
        return;
      }
      const points = pickPoints(golden, pointCount!, values.points !== undefined ? pointCount : undefined);
      log(`update trace: ${golden.length} durable writes (${[...new Set(golden.map((l) => l.kind))].join(', ')}); ${points.length} cut points: ${points.map((p) => p.name).join(', ')}`);
      for (const p of points) work.push(powerJob(p));
    });
    for (const j of jobs.slice(1)) work.push(() => attempt(j.name, j.run));
    if (withPower && fixed) for (const p of fixed) work.push(powerJob(p));
    const lane = async (): Promise<void> => {
      for (;;) {
        const job = work.shift();
        if (job) await job();
        else if (updatePending) await sleep(1000);
        else return;
      }
    };
    await Promise.all(Array.from({ length: lanes }, () => lane()));
  } finally {
    await server.stop().catch(() => undefined);
    if (!values.keep && results.every((r) => r.ok)) await rm(runs, { recursive: true, force: true });
    else log(`machines' disks and console logs kept in ${runs}`);
  }
  const passed = results.filter((r) => r.ok).length;
  process.stdout.write(`${passed} passed, ${results.length - passed} failed${notRun.length ? `, ${notRun.length} not run` : ''} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  return passed === results.length && results.length > 0 && notRun.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`device test: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
