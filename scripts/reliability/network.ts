/**
 * Network faults (issue 7): a real device (PowerRig: real GRUB, the real `ota-agent daemon`)
 * takes an update from a real `ota-server` through the loopback fault proxy of
 * scripts/net/fault-proxy.ts. Everything the device says goes through the proxy: it is enrolled
 * with the proxy's URL, and the server's --public-url makes the bundle URL of each check-in
 * answer point at the proxy too. One row per fault kind (drops at random offsets, stalls, a
 * very slow link, a 5xx storm, a server killed and restarted mid-transfer), each run on two
 * bundle sizes (three in a full run), each run with a fresh device and a release of its own.
 * A run completes when the update is committed, slot B holds exactly the release, and the
 * server holds its one success; it records the bytes the proxy sent for the bundle over the
 * bundle's size, the requests, the agent's retries and the seconds from publish to rest. Offsets, lengths and rates come from a
 * seeded PRNG: OTA_NET_SEED (default {@link DEFAULT_SEED}) draws them again, and the row says
 * which seed it used. Runs go one at a time: the faults are timed, and a restart is the
 * server's, which every device shares.
 */
import { execa } from 'execa';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { retriesUsed } from '../../agent/download/settings.js';
import { Store } from '../../agent/store/store.js';
import { api } from '../fleet/server.js';
import { startFaultProxy, type Fault, type FaultPlan, type FaultProxy } from '../net/fault-proxy.js';
import { DELTA_CUTS_ROW, runDeltaCuts } from './delta.js';
import { deviceReports, waitRest, type ServerView } from './drive.js';
import { checkAtRest, checkServer, type Ending } from './invariants.js';
import { makeRow, type Row } from './results.js';
import { PowerRig } from './rig.js';
import { RELEASE_CLI, enrollDevice, fsRelease, makeReleaseKey, since, startServer, workDir, type Release, type ReleaseKey, type Server } from './world.js';
import { seededRandom } from '../../shared/seeded-random.js';

/** The seed of the fault draws when OTA_NET_SEED does not give one. */
const DEFAULT_SEED = 20261121;

const KiB = 1024;
const MiB = 1024 * KiB;
/** The devices' `server.stallTimeoutSeconds`: the default minute would make each stall a minute long. */
const STALL_TIMEOUT_S = 2;
const PASS: Fault = { kind: 'pass' };

/** What one run's faults look like, drawn from the row's PRNG. */
interface Trial {
  /** The proxy's plan while the run lasts (it sees every request of the device). */
  plan: FaultPlan;
  /** The faults drawn, in words (offsets, lengths, rates). */
  drawn: string;
  /** Seconds the faults alone may add to the update (for its time limit). */
  extraSeconds: number;
  /** Download retries the faults must cost, exactly, when that is known: each one, one retry. */
  retries?: number;
  /** Faults of the plan that never happened (a run that did not meet them proved nothing about them). */
  left: () => number;
  /** Runs beside the update (the server restart); must leave the server running. */
  during?: (scene: Scene, signal: AbortSignal) => Promise<void>;
}

/** What a trial knows of its run. */
interface Scene {
  proxy: FaultProxy;
  server: Server;
  /** The bundle's path on the proxy (`/v1/bundles/<sha256>`). */
  path: string;
  /** The bundle's size in bytes. */
  size: number;
  fast: boolean;
}

/** A fault kind: one row. */
interface FaultKind {
  name: string;
  what: string;
  /** Nominal bundle sizes (bytes of incompressible bulk in the release). */
  sizes: (fast: boolean) => readonly number[];
  draw: (rng: () => number, scene: Scene) => Trial;
}

/** What one run showed. */
interface RunResult {
  nominal: number;
  size: number;
  problems: string[];
  bytes: number;
  requests: number;
  /** Retried requests that asked for the bundle from byte 0 (none unless a fault hit before its first byte). */
  fromZero: number;
  /** The device's other requests (check-ins, reports) and how many got a 5xx or no answer. */
  others: { all: number; failed: number };
  retries: number | undefined;
  seconds: number;
  drawn: string;
}


/** FNV-1a of a string: each row gets a PRNG of its own, the same whichever rows run. */
function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A whole number in [lo, hi]. */
const between = (rng: () => number, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

/** `n` offsets in [lo, hi), sorted. */
function offsets(rng: () => number, n: number, lo: number, hi: number): number[] {
  return Array.from({ length: n }, () => between(rng, lo, hi - 1)).sort((a, b) => a - b);
}

/** The first byte a request asks for (`Range: bytes=N-`), 0 without a Range. */
const rangeStart = (range: string | undefined): number => Number(/^bytes=(\d+)-/.exec(range ?? '')?.[1] ?? 0);

/** A bundle request of this run (check-ins and reports go through the proxy too). */
const isBundle = (s: Scene, r: { method: string; path: string }): boolean => r.method === 'GET' && r.path === s.path;

/**
 * One fault per bundle request, in order, each at an absolute bundle offset: a request that
 * resumes at byte `from` gets its fault `offset - from` bytes into its body (at once when the
 * offset is behind it). Later requests pass.
 */
function atOffsets(s: Scene, events: readonly { offset: number; fault: (afterBytes: number) => Fault }[]): Pick<Trial, 'plan' | 'left'> {
  let next = 0;
  return {
    plan: (r) => {
      const ev = isBundle(s, r) ? events[next] : undefined;
      if (!ev) return PASS;
      next++;
      return ev.fault(Math.max(0, ev.offset - rangeStart(r.range)));
    },
    left: () => events.length - next,
  };
}

/** `n` 5xx statuses, as an overloaded server or its gateway answers. */
const statuses = (rng: () => number, n: number): number[] => Array.from({ length: n }, () => [500, 502, 503, 504][between(rng, 0, 3)]!);

const label = (bytes: number): string => (bytes >= MiB ? `${+(bytes / MiB).toFixed(1)} MiB` : `${Math.round(bytes / KiB)} KiB`);
const STANDARD_SIZES = (fast: boolean): readonly number[] => (fast ? [512 * KiB, 2 * MiB] : [2 * MiB, 8 * MiB, 32 * MiB]);

/** The rows, in table order. */
const KINDS: readonly FaultKind[] = [
  {
    name: 'drops',
    what: 'bundle downloads whose connection drops at random offsets (resumed with Range)',
    sizes: STANDARD_SIZES,
    draw(rng, s) {
      const at = offsets(rng, s.fast ? 3 : 6, 0, s.size);
      return {
        ...atOffsets(s, at.map((offset) => ({ offset, fault: (afterBytes) => ({ kind: 'cut', afterBytes }) }))),
        drawn: `connection cut at bytes ${at.join(', ')}`,
        retries: at.length,
        extraSeconds: at.length * 2,
      };
    },
  },
  {
    name: 'stalls',
    what: `bundle downloads that stall at random offsets, past the ${STALL_TIMEOUT_S} s stall timeout and (the last) below it`,
    sizes: STANDARD_SIZES,
    draw(rng, s) {
      const at = offsets(rng, s.fast ? 2 : 4, 0, s.size);
      // Every stall but the last outlasts the agent's stall timeout: it gives up and resumes.
      // The last is shorter: the download must wait it out on the same connection. (A long
      // stall consumes its request; a short one would leave the faults after it unused.)
      const ms = at.map((_, i) => (i < at.length - 1 ? between(rng, STALL_TIMEOUT_S * 1000 + 500, STALL_TIMEOUT_S * 1000 + 3000) : between(rng, 300, STALL_TIMEOUT_S * 400)));
      return {
        ...atOffsets(s, at.map((offset, i) => ({ offset, fault: (afterBytes) => ({ kind: 'stall', afterBytes, ms: ms[i]! }) }))),
        drawn: `stalls at bytes ${at.map((o, i) => `${o} (${(ms[i]! / 1000).toFixed(1)} s)`).join(', ')}`,
        retries: at.length - 1,
        extraSeconds: at.length * (STALL_TIMEOUT_S + 4),
      };
    },
  },
  {
    name: 'slow',
    what: 'bundle downloads over a very slow link (32 to 128 KiB/s, a poor 3G link), on smaller bundles',
    // The smaller sizes keep a run under a couple of minutes at these rates.
    sizes: (fast) => (fast ? [128 * KiB, 512 * KiB] : [256 * KiB, 1 * MiB, 4 * MiB]),
    draw(rng, s) {
      const rate = between(rng, s.fast ? 96 : 32, 128) * KiB;
      return {
        plan: (r) => (isBundle(s, r) ? { kind: 'slow', bytesPerSecond: rate } : PASS),
        left: () => 0,
        drawn: `${rate / KiB} KiB/s`,
        retries: 0,
        extraSeconds: s.size / rate,
      };
    },
  },
  {
    name: '5xx',
    what: 'a 5xx storm: the device\'s first check-ins, then its bundle requests (and anything else it asks meanwhile) from a drop mid-download on, answered 500/502/503/504',
    sizes: STANDARD_SIZES,
    draw(rng, s) {
      const early = statuses(rng, between(rng, 1, 2));
      const cutAt = between(rng, Math.floor(s.size / 10), Math.floor((s.size * 9) / 10));
      const storm = statuses(rng, s.fast ? between(rng, 2, 3) : between(rng, 3, 5));
      const given = { early: 0, storm: 0, bundles: 0 };
      return {
        // Before the update the server fails the device's first requests (its check-ins); then
        // the link drops at `cutAt`, and the storm lasts for as many bundle requests as it has
        // statuses, failing whatever else the device asks meanwhile with 503.
        plan: (r) => {
          if (!isBundle(s, r)) {
            if (given.early < early.length) return { kind: 'error', status: early[given.early++]! };
            return given.bundles > 0 && given.storm < storm.length ? { kind: 'error', status: 503 } : PASS;
          }
          if (given.bundles++ === 0) return { kind: 'cut', afterBytes: cutAt };
          return given.storm < storm.length ? { kind: 'error', status: storm[given.storm++]! } : PASS;
        },
        left: () => early.length - given.early + storm.length - given.storm + (given.bundles === 0 ? 1 : 0),
        drawn: `first requests answered ${early.join(', ')}; cut at byte ${cutAt}, then ${storm.join(', ')}`,
        retries: 1 + storm.length,
        // Backoff without bytes in between doubles: below 1, 2, 4 ... s.
        extraSeconds: 2 ** storm.length + 2 * early.length + 2,
      };
    },
  },
  {
    name: 'restart',
    what: 'the server killed (SIGKILL) mid-transfer at a random offset, down for 0.5 to 3 s, then started again on its data',
    sizes: STANDARD_SIZES,
    draw(rng, s) {
      const at = between(rng, Math.floor(s.size / 10), Math.floor((s.size * 9) / 10));
      const downMs = between(rng, 500, 3000);
      const cut = atOffsets(s, [{ offset: at, fault: (afterBytes) => ({ kind: 'cut', afterBytes }) }]);
      let restarted = false;
      return {
        // The server dies as the link to it drops at `at`. (Killing it alone would not cut a
        // small bundle: the kernel delivers what a dead process had already written, and on
        // loopback that is megabytes.) Its requests then fail until it is up again.
        ...cut,
        left: () => cut.left() + (restarted ? 0 : 1),
        drawn: `server killed at byte ${at}, down ${(downMs / 1000).toFixed(1)} s`,
        extraSeconds: 30 + downMs / 1000,
        during: async (scene, signal) => {
          const deadline = Date.now() + 300_000;
          // The proxy counts the bytes before the cut is made, 20 ms later: polling every 5 ms
          // kills the server before the cut reaches the device.
          while ((scene.proxy.bytesSent.get(scene.path) ?? 0) < at) {
            if (signal.aborted || Date.now() > deadline) return;
            await sleep(5);
          }
          await scene.server.proc.stop('SIGKILL');
          await sleep(downMs);
          await scene.server.proc.restart();
          restarted = true;
        },
      };
    },
  },
];

/** What every run of the part shares: keys, the server, the proxy in front of it. */
interface World {
  dir: string;
  key: ReleaseKey;
  server: Server;
  proxy: FaultProxy;
  fast: boolean;
  seq: number;
}

async function makeWorld(dir: string, fast: boolean): Promise<World> {
  const key = await makeReleaseKey(join(dir, 'keys'));
  // The proxy needs the server's URL and the server the proxy's (for bundle URLs): the proxy
  // starts on a placeholder upstream and is pointed at the server once it listens.
  const proxy = await startFaultProxy('http://127.0.0.1:9');
  try {
    const server = await startServer(dir, [key.pubPath], ['--public-url', proxy.url]);
    proxy.setUpstream(server.proc.url);
    return { dir, key, server, proxy, fast, seq: 0 };
  } catch (err) {
    await proxy.close();
    throw err;
  }
}

async function upload(w: World, r: Release): Promise<void> {
  const up = await execa('node', [RELEASE_CLI, 'upload', r.path, '--server', w.server.proc.url], { env: { OTA_TOKEN: w.server.tokens.ops }, reject: false });
  if (up.exitCode !== 0) throw new Error(`uploading ${r.version} failed: ${String(up.stderr)}`);
}

/** A fresh device enrolled at the proxy, on a channel of its own, with a short stall timeout. */
async function makeDevice(w: World, id: string, root: string, release: Release): Promise<PowerRig> {
  const token = await enrollDevice(w.server, id, id);
  const rig = await PowerRig.create({
    root,
    id,
    kind: 'fs',
    trustedKeys: [w.key.pubPath],
    known: new Map([[release.version, release.content]]),
    server: { url: w.proxy.url, token, serverKey: w.server.serverKey, pollSeconds: 1 },
  });
  const cfg = JSON.parse(await readFile(rig.device.configPath, 'utf8')) as { server?: Record<string, unknown> };
  cfg.server = { ...cfg.server, stallTimeoutSeconds: STALL_TIMEOUT_S };
  await writeFile(rig.device.configPath, `${JSON.stringify(cfg, null, 2)}\n`);
  return rig;
}

/** A failure's message on one line: its first line and the device's last words. */
function oneLine(err: unknown, rig: PowerRig | undefined): string {
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  const tail = rig?.logTail.slice(-3).join(' | ');
  return tail ? `${first} (the device said: ${tail})` : first;
}

/** Checks a device at rest: the update committed on B with exactly the release, one success on the server. */
async function checkCommitted(rig: PowerRig, view: ServerView, txId: string): Promise<{ problems: string[]; retries: number | undefined }> {
  const problems = [...rig.problems];
  const seen = await rig.seen();
  const s = Store.open(rig.dataDir);
  let end: (Ending & { finished: boolean }) | undefined;
  let retries: number | undefined;
  try {
    const tx = s.transaction(txId);
    end = tx ? { state: tx.state, reason: tx.reason, finished: tx.finishedAt !== null } : undefined;
    retries = retriesUsed(s, txId);
    problems.push(...checkAtRest(seen, end, s.current() !== undefined, { state: 'committed', booted: 'B' }));
  } finally {
    s.close();
  }
  if (end) problems.push(...checkServer(await deviceReports(view), txId, end));
  return { problems, retries };
}

/** The run as the proxy saw it, from entry `from` of its log: the bundle's bytes and requests, and the device's other requests. */
function transfer(proxy: FaultProxy, path: string, from: number): Pick<RunResult, 'bytes' | 'requests' | 'fromZero' | 'others'> {
  const seen = proxy.log.slice(from);
  const reqs = seen.filter((l) => l.method === 'GET' && l.path === path);
  const others = seen.filter((l) => l.path !== path);
  return {
    bytes: proxy.bytesSent.get(path) ?? 0,
    requests: reqs.length,
    fromZero: reqs.slice(1).filter((l) => rangeStart(l.range) === 0).length,
    // Status 0: the proxy reached no server (it was down), and dropped the connection.
    others: { all: others.length, failed: others.filter((l) => l.status === 0 || l.status >= 500).length },
  };
}

/** What driving one update showed. */
interface Driven {
  problems: string[];
  retries: number | undefined;
  seconds: number;
}

/** Publishes the release to the device's channel under the trial's faults and checks the device at rest. */
async function drive(w: World, rig: PowerRig, release: Release, trial: Trial): Promise<Driven> {
  w.proxy.setPlan(trial.plan);
  const view: ServerView = { url: w.server.proc.url, ops: w.server.tokens.ops, device: rig.device.id };
  const t0 = Date.now();
  await api(w.server.proc.url, w.server.tokens.ops, 'PUT', `/v1/channels/${rig.device.id}`, { product: 'gateway', version: release.version });
  rig.arm();
  rig.start();
  // Boot, check-in, download, install, reboot, boot, health check, commit, reports: a minute
  // and a half on a loaded machine, plus whatever the faults add.
  const txId = await waitRest(rig, 0, view, (90 + 3 * trial.extraSeconds + release.size / MiB) * 1000);
  const seconds = since(t0);
  await rig.stop();
  const { problems, retries } = await checkCommitted(rig, view, txId);
  if (trial.retries !== undefined && retries !== trial.retries) problems.push(`the download made ${retries ?? '?'} retries; its faults call for ${trial.retries}`);
  if (trial.left()) problems.push(`${trial.left()} of the planned faults never happened: the run did not test them`);
  return { problems, retries, seconds };
}

/** One run: a fresh release of `nominal` bulk bytes, a fresh device, the kind's faults, to rest. */
async function runOnce(w: World, kind: FaultKind, nominal: number, rng: () => number): Promise<RunResult> {
  const t0 = Date.now();
  const n = ++w.seq;
  const id = `net-${n}-${kind.name}`;
  const root = join(w.dir, id);
  let rig: PowerRig | undefined;
  let release: Release | undefined;
  let drawn = '';
  let driven: Driven | undefined;
  const problems: string[] = [];
  const stop = new AbortController();
  let side: Promise<void> = Promise.resolve();
  // Runs go one at a time: what the proxy logs from here on is this run's.
  const logFrom = w.proxy.log.length;
  try {
    release = await fsRelease(join(root, 'release'), w.key, { version: `1.0.${n}`, healthy: true, bulk: nominal });
    await upload(w, release);
    const scene: Scene = { proxy: w.proxy, server: w.server, path: `/v1/bundles/${release.sha256}`, size: release.size, fast: w.fast };
    const trial = kind.draw(rng, scene);
    drawn = trial.drawn;
    rig = await makeDevice(w, id, join(root, 'device'), release);
    side = trial.during?.(scene, stop.signal) ?? side;
    driven = await drive(w, rig, release, trial);
    problems.push(...driven.problems);
  } catch (err) {
    problems.push(oneLine(err, rig));
  } finally {
    stop.abort();
    // The restart, once begun, finishes: later runs need the server.
    await side.catch((err: unknown) => problems.push(`the server restart failed: ${oneLine(err, undefined)}`));
    w.proxy.setPlan(() => PASS);
    await rig?.stop().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
  const t = release ? transfer(w.proxy, `/v1/bundles/${release.sha256}`, logFrom) : { bytes: 0, requests: 0, fromZero: 0, others: { all: 0, failed: 0 } };
  return { nominal, size: release?.size ?? nominal, problems, ...t, retries: driven?.retries, seconds: driven?.seconds ?? since(t0), drawn };
}

/** One run's figures: `4 MiB: 1.02× bytes, 6 requests, 5 retries, 14 s`. */
function runFigures(r: RunResult): string {
  return `${label(r.nominal)}: ${(r.bytes / r.size).toFixed(3)}× bytes, ${r.requests} requests, ${r.retries ?? '?'} retries, ${r.seconds.toFixed(0)} s`;
}

/** One run's note: sizes, the faults drawn, what else the device asked meanwhile. */
function runNote(r: RunResult): string {
  const zero = r.fromZero ? `; ${r.fromZero} retried request(s) asked for byte 0 again` : '';
  return `${label(r.nominal)} (${r.size} bytes, ${r.bytes} sent): ${r.drawn}; ${r.others.all} other requests of the device (check-ins, reports), ${r.others.failed} of them failed${zero}`;
}

/** Runs a fault kind on each of its sizes and makes its row. */
async function runKind(w: World, kind: FaultKind, seed: number, log: (line: string) => void): Promise<Row> {
  const t0 = Date.now();
  const id = `network:${kind.name}`;
  const rng = seededRandom(seed ^ fnv(id));
  const runs: RunResult[] = [];
  for (const nominal of kind.sizes(w.fast)) {
    log(`${id}: ${label(nominal)} bundle`);
    const r = await runOnce(w, kind, nominal, rng);
    log(`${id}: ${runFigures(r)} (${r.drawn})${r.problems.length ? ` ✗ ${r.problems[0]}` : ''}`);
    runs.push(r);
  }
  const held = runs.filter((r) => r.problems.length === 0).length;
  return makeRow({
    id,
    part: 'network',
    what: kind.what,
    tried: runs.length,
    held,
    figures: `${held}/${runs.length} completed (committed, slot B holding exactly the release); seed ${seed}; ${runs.map(runFigures).join('; ')} (× bytes: what the proxy sent for the bundle over its size; s: publish to commit)`,
    failures: runs.filter((r) => r.problems.length).map((r) => `${label(r.nominal)} bundle (seed ${seed}; ${r.drawn}): ${r.problems.join('; ')}`),
    notes: runs.map(runNote),
    seconds: since(t0),
    mode: w.fast ? 'fast' : 'full',
  });
}

/** The seed of this run: OTA_NET_SEED when set (a whole number), else {@link DEFAULT_SEED}. */
function seedFromEnv(): number {
  const raw = process.env.OTA_NET_SEED;
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`OTA_NET_SEED=${raw}: give a whole number`);
  return n;
}

/** The network part: one row per fault kind `want` selects, each on two or three bundle sizes. */
export async function runNetwork(opts: { want: (id: string) => boolean; fast: boolean; log: (line: string) => void }): Promise<Row[]> {
  const chosen = KINDS.filter((k) => opts.want(`network:${k.name}`));
  const wantDelta = opts.want(DELTA_CUTS_ROW);
  if (!chosen.length && !wantDelta) return [];
  const seed = seedFromEnv();
  opts.log(`network: seed ${seed}${process.env.OTA_NET_SEED ? ' (OTA_NET_SEED)' : ''}`);
  const { dir, cleanup } = await workDir('network');
  const rows: Row[] = [];
  try {
    const w = await makeWorld(dir, opts.fast);
    try {
      for (const kind of chosen) rows.push(await runKind(w, kind, seed, opts.log));
      if (wantDelta) rows.push(await runDeltaCuts({ dir, key: w.key, server: w.server, proxy: w.proxy, fast: opts.fast, log: opts.log }, seed));
    } finally {
      await w.server.proc.stop().catch(() => undefined);
      await w.proxy.close();
    }
  } finally {
    await cleanup();
  }
  return rows;
}
