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
 * The power cuts are taken from the `update` machine itself: at each point the host stops
 * that machine (SIGSTOP of qemu) and its server, copies the machine's disk as qemu has written
 * it (what a SIGKILL leaves: nothing qemu still holds is in it) and the server's data, and lets
 * both run on. Each copy is a machine of its own, powered on later on the same disk with its own
 * copy of the server, which must end committed or rolled back. So the download, the reboot and
 * the commit before a cut run once for all the points, not once per point.
 *
 * Every machine has its own server (a copy of one made with the releases), reached from the
 * guest at GUEST_SERVER (vm.ts). One line per scenario and point, then `N passed, M failed`;
 * exit 1 on any failure. Two machines at a time (`--jobs N`: N), the longest first. The points
 * are fixed names (FULL_POINTS, `--ci`: CI_POINTS, with the update only). `--only a,b`: those
 * scenarios (`power` runs `update` too: the cuts are taken from it). `--points N`: N points
 * picked from a saved update trace (the last run's, else test/device/update-trace.json).
 * `--points a#1,b#2+8` (or `--cuts`): exactly those named points. `--stop-at <ISO time>`: no
 * machine run starts after it (those left print NOT RUN).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { ServerProcess, api, createToken } from '../fleet/server.js';
import { agentDeb, buildImage, CACHE, FACTORY_VERSION, type DeviceImage } from './image.js';
import { BAD_APP, GOOD, HANG, PANIC, releaseBundle, type Release } from './releases.js';
import { REPO, sh } from './util.js';
import { GUEST_SERVER, Vm, type TraceLine } from './vm.js';
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

/** The host side: the image, the server data every machine's server starts from, its tokens. */
interface Host {
  image: DeviceImage;
  /** A server data directory with the releases on their channels (no server runs on it). */
  template: string;
  ops: string;
  enroll: string;
  runs: string;
}

/** One machine and the update server only it talks to. */
interface Machine {
  vm: Vm;
  id: string;
  server: ServerProcess;
  /** The server's data directory. */
  data: string;
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

/** Every server started, so that an interrupted run leaves none behind. */
const servers = new Set<ServerProcess>();

/**
 * Copies a server's data directory: the database (with its WAL; the shared-memory index is
 * made again from it) and keys; the bundles are hard links (they are never written again).
 * The server must be stopped, or held still with SIGSTOP: the copy is then what a crash of it
 * would leave.
 */
async function copyServerData(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from)) {
    if (e === 'tmp' || e.endsWith('-shm')) continue;
    await sh('cp', [e === 'bundles' ? '-al' : '-a', join(from, e), join(to, e)]);
  }
}

/** Starts a server on the data directory `data` (the releases' key; bundles at GUEST_SERVER). */
async function serve(image: DeviceImage, data: string): Promise<ServerProcess> {
  const server = await ServerProcess.start({ data, releaseKeys: [image.key.pub], args: ['--poll-interval', '5', '--public-url', GUEST_SERVER] });
  servers.add(server);
  return server;
}

async function view(host: Host, m: Machine): Promise<DeviceView | undefined> {
  return api<DeviceView>(m.server.url, host.ops, 'GET', `/v1/devices/${m.id}`).catch(() => undefined);
}

/** Polls the machine's server until `done` holds for it (or the machine stops, or time runs out). */
async function waitServer(host: Host, m: Machine, seconds: number, done: (v: DeviceView) => boolean): Promise<DeviceView | undefined> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const v = await view(host, m);
    if (v && done(v)) return v;
    if (!m.vm.running) return v && done(v) ? v : undefined;
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
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void Promise.allSettled([...machines].map((m) => (m.running ? m.cut() : undefined)))
      .then(() => Promise.allSettled([...servers].map((s) => s.stop())))
      .finally(() => {
        process.stderr.write(`device test: interrupted (${sig})\n`);
        process.exit(130);
      });
  });
}

/** A factory-new machine provisioned for `channel`, with its own server (a copy of the template). */
async function newMachine(host: Host, name: string, channel: string): Promise<Machine> {
  const id = `qemu-${name}`;
  const vm = await Vm.create(join(host.runs, name), host.image, { DEVICE_ID: id, SERVER_URL: GUEST_SERVER, ENROLL_TOKEN: host.enroll, CHANNEL: channel, POLL_SECONDS: '5', FACTORY_VERSION });
  machines.add(vm);
  const data = join(vm.dir, 'server-data');
  await copyServerData(host.template, data);
  const server = await serve(host.image, data);
  vm.serverPort = server.port;
  return { vm, id, server, data };
}

/** Up to this long for one machine's whole scenario (TCG boots take about a minute each). */
const VM_LIMIT = 1500;

/** A machine copied at a power cut, waiting for its turn to be powered on again. */
interface Cut {
  point: CutPoint;
  /** The machine: its disk, console and trace as they were at the cut. */
  vm: Vm;
  id: string;
  /** Its server's data as it was at the cut. */
  data: string;
  /** The write the cut came after, and when (seconds after the power-on it fell in). */
  cutAt: string;
  cutSec: number;
}

/**
 * Takes the cuts from a running machine: `take` stops the machine and its server at once, and
 * copies both (one cut after the other: a cut that comes while another is being copied finds the
 * machine still stopped, just after its own write); they run on when no cut is left to copy.
 */
class Cutter {
  private pending = 0;
  private chain: Promise<void> = Promise.resolve();
  readonly taken = new Set<string>();

  constructor(
    private readonly host: Host,
    private readonly m: Machine,
    private readonly onCut: (c: Cut) => void,
  ) {}

  take(point: CutPoint, line: TraceLine): void {
    if (this.taken.has(point.name)) return;
    this.taken.add(point.name);
    this.pending++;
    const sec = (line.at + point.delayMs) / 1000;
    const cutAt = `write ${line.n}: ${line.kind} ${line.what}`.slice(0, 70);
    this.chain = this.chain.then(async () => {
      try {
        if (!this.m.vm.running) throw new Error('the machine was off');
        await this.m.vm.pause();
        this.m.server.signal('SIGSTOP');
        const vm = await this.m.vm.copyOf(join(this.host.runs, `power-${point.name.replace(/[^A-Za-z0-9._-]+/g, '.')}`));
        const data = join(vm.dir, 'server-data');
        await copyServerData(this.m.data, data);
        this.onCut({ point, vm, id: this.m.id, data, cutAt, cutSec: sec });
      } catch (err) {
        log(`cut ${point.name} not taken: ${err instanceof Error ? err.message : String(err)}`);
        this.taken.delete(point.name);
      } finally {
        if (--this.pending === 0) {
          this.m.server.signal('SIGCONT');
          await this.m.vm.resume();
        }
      }
    });
  }

  /** Waits for the copies under way. */
  async settle(): Promise<void> {
    await this.chain;
  }
}

/** A release installs, reboots for real, commits; or, for a bad release, rolls back as expected. */
async function releaseScenario(host: Host, name: string, r: Release, expect: { outcome: 'success' | 'failure'; reason?: string; boots: RegExp }, cuts?: { points: readonly CutPoint[]; onCut: (c: Cut) => void; trace: TraceLine[] }): Promise<string> {
  const m = await newMachine(host, name, r.name);
  const { vm } = m;
  let cutter: Cutter | undefined;
  if (cuts) {
    const c = new Cutter(host, m, cuts.onCut);
    cutter = c;
    const watches = cuts.points.map((p) => ({ p, w: new PointWatch(p) }));
    vm.onTrace((l) => {
      for (const { p, w } of watches) {
        if (!w.hit(l)) continue;
        if (p.delayMs > 0) setTimeout(() => c.take(p, l), p.delayMs);
        else c.take(p, l);
      }
    });
  }
  vm.start(VM_LIMIT);
  try {
    const v = await waitServer(host, m, VM_LIMIT, (x) => finals(x, r.version).length > 0 && x.device.transaction === null);
    // A little longer: a second final report would show up now (and the boot after a rollback settles).
    if (v) await sleep(10_000);
    await cutter?.settle();
    await vm.cut();
    if (cuts) cuts.trace.push(...vm.trace);
    const after = await view(host, m);
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
    return `${seen}; store ${store.detail}; ${vm.trace.length} durable writes${phases(vm.trace)}${cutter ? `; ${cutter.taken.size} cut(s) taken` : ''}`;
  } finally {
    await cutter?.settle();
    if (vm.running) await vm.cut();
    await m.server.stop().catch(() => undefined);
    servers.delete(m.server);
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

/** A machine copied at a power cut is powered on again on the same disk, with its server's data of that moment. */
async function powerScenario(host: Host, c: Cut, keep: boolean): Promise<string> {
  const { vm } = c;
  machines.add(vm);
  const server = await serve(host.image, c.data);
  const m: Machine = { vm, id: c.id, server, data: c.data };
  vm.serverPort = server.port;
  const bootsBefore = (await vm.boots()).length;
  const consoleBefore = (await vm.console()).length;
  let passed = false;
  try {
    // Done when the update has its final report and the agent, after this power-on, got
    // through its boot to checking in.
    const on = Date.now();
    vm.start(VM_LIMIT);
    const v = await waitServer(host, m, VM_LIMIT, (x) => finals(x, GOOD.version).length > 0 && x.device.transaction === null);
    const deadline = Date.now() + 300_000;
    while (v && vm.running && Date.now() < deadline && !CHECKING_IN.test((await vm.console()).slice(consoleBefore))) await sleep(2000);
    // A second final report would arrive now.
    if (v) await sleep(8_000);
    await vm.cut();
    const after = await view(host, m);
    const boots = await vm.boots();
    const f = finals(after, GOOD.version);
    const env = await vm.grubenv();
    const up = CHECKING_IN.test((await vm.console()).slice(consoleBefore));
    const again = ((Date.now() - on) / 1000).toFixed(0);
    const seen = `cut after ${c.point.name} (${c.cutAt}${c.point.delayMs ? `, +${c.point.delayMs / 1000} s` : ''}); boots ${boots.slice(0, bootsBefore).join(' ')} | ${boots.slice(bootsBefore).join(' ')}; ${describe(after)}; ${f.length} final report(s); ORDER="${env.ORDER}"`;
    check(boots.length > bootsBefore && up, `${seen}: after the cut the device did not come up to check in again`);
    check(f.length === 1, `${seen}: expected exactly one final report`);
    check(f[0]!.outcome !== 'success' || after?.device.version === GOOD.version, `${seen}: committed on the server but the device runs ${after?.device.version}`);
    const store = await checkStore(vm, host.image);
    check(store.ok, `${seen}; store: ${store.detail}`);
    passed = true;
    return `${seen}; ${f[0]!.outcome === 'success' ? 'committed' : `rolled back (${f[0]!.reason})`}; store ${store.detail}; cut ${c.cutSec.toFixed(0)} s after a power-on, settled ${again} s after the next`;
  } finally {
    if (vm.running) await vm.cut();
    await server.stop().catch(() => undefined);
    servers.delete(server);
    // A passed point's disk is not needed again (hundreds of MB each).
    if (passed && !keep) await rm(vm.dir, { recursive: true, force: true });
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
  const savedTrace = join(CACHE, 'update-trace.json');
  // The points: fixed names (FULL_POINTS, CI_POINTS), the names given, or N picked from a saved update trace.
  const list = values.cuts ?? (values.points !== undefined && !/^\d+$/.test(values.points) ? values.points : undefined);
  let points: CutPoint[];
  if (list !== undefined) points = list.split(',').map(parsePoint);
  else if (values.points !== undefined) {
    const from = existsSync(savedTrace) ? savedTrace : join(REPO, 'test', 'device', 'update-trace.json');
    points = pickPoints(JSON.parse(await readFile(from, 'utf8')) as TraceLine[], Number(values.points), Number(values.points));
    log(`${points.length} cut points picked from ${from.slice(REPO.length + 1)}: ${points.map((p) => p.name).join(', ')}`);
  } else points = (values.ci ? CI_POINTS : FULL_POINTS).map(parsePoint);
  if (!want('power')) points = [];
  const lanes = Number(values.jobs ?? 2);
  if (!Number.isInteger(lanes) || lanes < 1) throw new Error(`--jobs wants a whole number of machines at a time, 1 or more, not ${values.jobs}`);
  const stopAt = values['stop-at'] === undefined ? Infinity : Date.parse(values['stop-at']);
  if (Number.isNaN(stopAt)) throw new Error(`--stop-at wants an ISO time such as 2026-12-05T04:35:00Z, not ${values['stop-at']}`);
  const image = await buildImage(await agentDeb(), log);
  const runs = await mkdtemp(join(CACHE, 'run-'));
  // The template: a server with the releases on their channels; every machine's server starts from a copy.
  const template = join(runs, 'server-template');
  await mkdir(template, { recursive: true });
  const server = await serve(image, template);
  const host: Host = { image, template, ops: await createToken(template, 'ops'), enroll: await createToken(template, 'enroll'), runs };
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
      const u = await execa('node', [join(REPO, 'dist', 'release', 'cli.js'), 'upload', b, '--server', server.url, '--channel', r.name], { reject: false, env: { OTA_TOKEN: host.ops } });
      if (u.exitCode !== 0) throw new Error(`ota-release upload ${r.version} to ${r.name}: ${String(u.stderr)}`);
      log(`release ${r.version} (${r.name}) on the server`);
    }
    await server.stop();
    servers.delete(server);
    // `lanes` machines at a time, the longest first: the update (its cuts join the queue as they
    // are taken), the hang, the panic, the failed health check; then the cuts.
    const work: (() => Promise<void>)[] = [];
    let updating = want('update') || points.length > 0;
    const trace: TraceLine[] = [];
    const cuts: Cut[] = [];
    const onCut = (c: Cut) => {
      cuts.push(c);
      log(`cut ${c.point.name} taken (${c.cutAt}); ${cuts.length} of ${points.length}`);
      work.push(() => attempt(`power ${c.point.name}`, () => powerScenario(host, c, values.keep === true)));
    };
    if (updating)
      work.push(async () => {
        await attempt('update', () => releaseScenario(host, 'update', GOOD, { outcome: 'success', boots: /^A1 B1$/ }, { points, onCut, trace }));
        updating = false;
        if (trace.length > 0) {
          await writeFile(savedTrace, JSON.stringify(trace, null, 1));
          log(`update trace: ${trace.length} durable writes; ${namedTrace(trace).map((c, i) => `${i + 1} ${pointName(c.cls, c.ordinal)}`).join(', ')}`);
        }
        // A point the update never reached (or whose copy failed) is a failure of its own.
        const taken = new Set(cuts.map((c) => c.point.name));
        for (const p of points) if (!taken.has(p.name)) say({ name: `power ${p.name}`, ok: false, seen: `no cut: the update made ${trace.length} durable writes, none of them ${p.name}`, seconds: 0 });
      });
    if (want('hang') && !values.ci) work.push(() => attempt('hang', () => releaseScenario(host, 'hang', HANG, { outcome: 'failure', reason: 'boot-failed', boots: /^A1 B1 B2 B3 A1$/ })));
    if (want('panic') && !values.ci) work.push(() => attempt('panic', () => releaseScenario(host, 'panic', PANIC, { outcome: 'failure', reason: 'boot-failed', boots: /^A1 B1 B2 B3 A1$/ })));
    if (want('health') && !values.ci) work.push(() => attempt('health', () => releaseScenario(host, 'health', BAD_APP, { outcome: 'failure', reason: 'health-check:demo-app', boots: /^A1 B1 A1$/ })));
    const lane = async (): Promise<void> => {
      for (;;) {
        const job = work.shift();
        if (job) await job();
        else if (updating) await sleep(1000);
        else return;
      }
    };
    await Promise.all(Array.from({ length: lanes }, () => lane()));
  } finally {
    await Promise.allSettled([...servers].map((s) => s.stop()));
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
