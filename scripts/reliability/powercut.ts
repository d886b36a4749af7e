/**
 * Power cuts at every durable write (issue 7, "the heart"). For each scenario, one uncut run
 * traces the durable writes of every agent process (store commits, slot fsyncs, grubenv
 * renames, reports marked sent); then, for every process p and every k up to its count, a
 * fresh device runs the same scenario with process p set to SIGKILL itself right after its
 * k-th write. The cut is a power cut: the device is inspected as the cut left it, boots through
 * GRUB, and the agent runs to rest. The invariants of scripts/reliability/invariants.ts are
 * checked at every boot, right after the cut and at rest; the server's history is checked for
 * exactly one final outcome. test/e2e/agent-powercut-*.test.ts cut local installs on raw slots;
 * these scenarios are driven by the server (and, for the technician rollback and the boot
 * fallback that the e2e tests do not cut, also locally), on fs slots.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { Store } from '../../agent/store/store.js';
import { api } from '../fleet/server.js';
import { bootedSlot, setCrash } from '../sim/simulator.js';
import { deltaPair } from './delta.js';
import { deviceReports, factoryBaseline, transactionCount, waitRest } from './drive.js';
import { slotFingerprint, type ReleaseContent } from './digest.js';
import { checkAtRest, checkServer, type Ending, type Expected, type Slot } from './invariants.js';
import { makeRow, type Row } from './results.js';
import { PowerRig, type CutPlan } from './rig.js';
import { RELEASE_CLI, enrollDevice, fsRelease, makeReleaseKey, pool, since, startServer, workDir, type Release, type ReleaseKey, type Server } from './world.js';

/** Options of the power-cut part. */
export interface PowercutOptions {
  want: (id: string) => boolean;
  fast: boolean;
  jobs: number;
  log: (line: string) => void;
}

/** What a sweep shares: keys, releases, the server. */
interface World {
  dir: string;
  key: ReleaseKey;
  good: Release;
  bad: Release;
  /** Raw releases for the delta scenario: `next` shares all but a few chunks with `base`. */
  delta: { base: Release; next: Release };
  known: Map<string, ReleaseContent>;
  server: Server | undefined;
  seq: number;
}

/** One device of a point, with what the trigger needs. */
interface Point {
  rig: PowerRig;
  world: World;
  id: string;
  channel: string;
}

/** A scenario: a baseline, a trigger, and how it ends without a cut. */
interface Scenario {
  name: string;
  what: string;
  server: boolean;
  /** `committed`: slot B holds a committed 1.0.0 before the trigger (a rollback has somewhere to go). */
  baseline: 'factory' | 'committed';
  /** The new slot's kernel panics at every boot: GRUB must fall back. */
  crashB?: boolean;
  /** `uboot`: the device boots through real U-Boot and its agent uses the U-Boot backend. */
  bootloader?: 'uboot';
  /** `delta`: raw slots; the baseline commits the delta base and the update is a delta install. */
  delta?: boolean;
  /** The CI subset's stride when FAST_STRIDE would fall on one kind of write only. */
  fastStride?: number;
  expected: Expected;
  trigger(p: Point): Promise<void>;
}

const publish = (version: string) => async (p: Point): Promise<void> => {
  await api(p.world.server!.proc.url, p.world.server!.tokens.ops, 'PUT', `/v1/channels/${p.channel}`, { product: 'gateway', version });
};

const techInstall = (which: 'good' | 'bad') => async (p: Point): Promise<void> => {
  await p.rig.tech(['install', p.world[which].path]);
};

/** The scenarios, by row id suffix. */
export const SCENARIOS: readonly Scenario[] = [
  { name: 'server-update', what: 'a full update from the server (check-in, download, install, reboot, commit, report)', server: true, baseline: 'factory', expected: { state: 'committed', booted: 'B' }, trigger: publish('1.0.0') },
  {
    name: 'server-health-rollback',
    what: 'an update from the server whose health check fails, rolled back',
    server: true,
    baseline: 'factory',
    expected: { state: 'rolled-back', reason: 'health-check:app', booted: 'A' },
    trigger: publish('1.1.0'),
  },
  {
    name: 'server-technician-rollback',
    what: 'a technician rollback requested from the server',
    server: true,
    baseline: 'committed',
    expected: { state: 'rolled-back', reason: 'technician', booted: 'A' },
    trigger: async (p) => {
      await api(p.world.server!.proc.url, p.world.server!.tokens.technician, 'POST', `/v1/devices/${p.id}/rollback`, { note: 'reliability power cut' });
    },
  },
  {
    name: 'server-boot-fallback',
    what: 'an update from the server whose new slot panics at boot: GRUB falls back',
    server: true,
    baseline: 'factory',
    crashB: true,
    expected: { state: 'rolled-back', reason: 'boot-failed', booted: 'A' },
    trigger: publish('1.0.0'),
  },
  {
    name: 'local-technician-rollback',
    what: 'a technician rollback on the device (ota-agent rollback)',
    server: false,
    baseline: 'committed',
    expected: { state: 'rolled-back', reason: 'technician', booted: 'A' },
    trigger: async (p) => {
      await p.rig.tech(['rollback']);
    },
  },
  {
    name: 'local-boot-fallback',
    what: 'a local install (ota-agent install FILE) whose new slot panics at boot',
    server: false,
    baseline: 'factory',
    crashB: true,
    expected: { state: 'rolled-back', reason: 'boot-failed', booted: 'A' },
    trigger: techInstall('good'),
  },
  // uboot: the same local boot fallback on a U-Boot device. Every boot runs boot.scr in real
  // U-Boot (qemu-system-aarch64); every agent env write is two fw_setenv (primary, then the
  // second copy), each a cut point, and a cut after the primary's write is made a cut *during*
  // it (the primary torn, see rig.ts): U-Boot and the agent must carry on from the second copy.
  {
    name: 'uboot-local-boot-fallback',
    what: 'U-Boot device: a local install whose new slot panics at boot; cuts during and between fw_setenv writes',
    server: false,
    baseline: 'factory',
    crashB: true,
    bootloader: 'uboot',
    expected: { state: 'rolled-back', reason: 'boot-failed', booted: 'A' },
    trigger: techInstall('good'),
  },
  // delta: raw slots. The baseline commits DELTA_BASE on B (its chunk index kept at commit); the
  // update installs DELTA_NEXT onto A from B's chunks plus ranges of the bundle, fsyncing at
  // every checkpoint; a cut resumes from the last durable chunk boundary (docs/DELTA.md).
  {
    name: 'local-delta-update',
    what: 'a delta install on raw slots (ota-agent install FILE; chunks from the running slot, the rest by ranges)',
    server: false,
    baseline: 'committed',
    delta: true,
    // Its writes alternate (slot fsync, then the store's checkpoint): an even stride would cut
    // after the store writes only.
    fastStride: 3,
    expected: { state: 'committed', booted: 'A' },
    trigger: async (p) => {
      await p.rig.tech(['install', p.world.delta.next.path]);
    },
  },
];

/** What one run of a scenario showed. */
interface PointResult {
  plan: CutPlan | undefined;
  /** The planned process made fewer writes this time (reports go out on a timer): no cut happened. */
  notReached: boolean;
  cut: PowerRig['cut'];
  problems: string[];
  traces: string[][];
  boots: number;
  seconds: number;
  root: string;
}

const REST_TIMEOUT_MS = 240_000;

/** Runs a scenario once on a fresh device, cut per `plan` (or not), and checks every invariant. */
async function runPoint(world: World, sc: Scenario, plan: CutPlan | undefined): Promise<PointResult> {
  const t0 = Date.now();
  const n = ++world.seq;
  const id = `pc-${n}-${sc.name}`;
  const channel = `pc-${n}`;
  const root = join(world.dir, id);
  let rigServer;
  if (sc.server) {
    const s = world.server!;
    rigServer = { url: s.proc.url, token: await enrollDevice(s, id, channel), serverKey: s.serverKey, pollSeconds: 2 };
  }
  const rig = await PowerRig.create({ root, id, kind: sc.delta ? 'raw' : 'fs', trustedKeys: [world.key.pubPath], known: world.known, ...(rigServer ? { server: rigServer } : {}), ...(sc.bootloader ? { bootloader: sc.bootloader } : {}) });
  const point: Point = { rig, world, id, channel };
  const view = sc.server ? { url: world.server!.proc.url, ops: world.server!.tokens.ops, device: id } : undefined;
  const problems: string[] = [];
  try {
    // Baseline: the factory system booted and marked good, and for a rollback a committed 1.0.0 on B.
    await factoryBaseline(rig);
    if (sc.baseline === 'committed') {
      if (sc.server) {
        await publish('1.0.0')(point);
        await waitRest(rig, 0, view, REST_TIMEOUT_MS);
      } else {
        await rig.stop();
        const r = await rig.tech(['install', (sc.delta ? world.delta.base : world.good).path]);
        if (r.code !== 0) throw new Error(`baseline: ota-agent install exited ${r.code}: ${r.stderr}`);
        rig.start();
        await waitRest(rig, 0, undefined, REST_TIMEOUT_MS);
      }
    }
    await rig.stop();
    if (sc.crashB) await setCrash(rig.device.dev, 'B', true);
    const source = (await bootedSlot(rig.device.dev))!;
    const before = { A: await slotFingerprint(rig.device.dev.slots.A), B: await slotFingerprint(rig.device.dev.slots.B) };
    const txBefore = transactionCount(rig);

    rig.arm(plan);
    await sc.trigger(point);
    rig.start();
    const txId = await waitRest(rig, txBefore, view, REST_TIMEOUT_MS);
    await rig.stop();

    problems.push(...rig.problems);
    const seen = await rig.seen();
    const s = Store.open(rig.dataDir);
    let end: (Ending & { finished: boolean }) | undefined;
    try {
      const tx = s.transaction(txId);
      end = tx ? { state: tx.state, reason: tx.reason, finished: tx.finishedAt !== null } : undefined;
      problems.push(...checkAtRest(seen, end, s.current() !== undefined, sc.expected));
    } finally {
      s.close();
    }
    if (view && end) problems.push(...checkServer(await deviceReports(view), txId, end));
    // The slot that ran when the update started is never written; a rollback writes no slot at all.
    const after = { A: await slotFingerprint(rig.device.dev.slots.A), B: await slotFingerprint(rig.device.dev.slots.B) };
    if (after[source] !== before[source]) problems.push(`the running slot ${source} changed during the update`);
    const other: Slot = source === 'A' ? 'B' : 'A';
    if (sc.baseline === 'committed' && sc.expected.state === 'rolled-back' && after[other] !== before[other]) problems.push(`slot ${other} changed during a rollback, which writes no slot`);
    // The uncut run must be a delta install, or the row would prove nothing about deltas.
    if (sc.delta && !plan && !installedAsDelta(rig, txId)) problems.push('the update was not installed as a delta (no `delta: true` on its installed event)');
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
    await rig.stop().catch(() => undefined);
  }
  return { plan, notReached: plan !== undefined && rig.cut === undefined, cut: rig.cut, problems, traces: await rig.traces(), boots: rig.boots.length, seconds: since(t0), root };
}

/** True when transaction `txId`'s installed event says the image was built as a delta. */
function installedAsDelta(rig: PowerRig, txId: string): boolean {
  const s = Store.open(rig.dataDir);
  try {
    return s.events({ transactionId: txId, limit: 100 }).some((e) => e.toState === 'installed' && e.details?.delta === true);
  } finally {
    s.close();
  }
}

/** The points of a sweep: every (process, k) of the uncut run's traces. */
export function allPoints(traces: readonly (readonly string[])[]): (CutPlan & { write: string })[] {
  return traces.flatMap((lines, process) => lines.map((write, i) => ({ process, k: i + 1, write })));
}

/** The CI subset: every `stride`-th point, and always the first and last write of each process. */
export function stridePoints<T extends CutPlan>(points: readonly T[], stride: number): T[] {
  return points.filter((p, i) => i % stride === 0 || p.k === 1 || points[i + 1]?.process !== p.process);
}

async function makeWorld(dir: string, needServer: boolean): Promise<World> {
  const key = await makeReleaseKey(join(dir, 'keys'));
  const good = await fsRelease(join(dir, 'releases'), key, { version: '1.0.0', healthy: true, bulk: 512 * 1024 });
  const bad = await fsRelease(join(dir, 'releases'), key, { version: '1.1.0', healthy: false, bulk: 512 * 1024 });
  const delta = await deltaPair(join(dir, 'releases'), key);
  const known = new Map<string, ReleaseContent>([
    ['1.0.0', good.content],
    ['1.1.0', bad.content],
    [delta.base.version, delta.base.content],
    [delta.next.version, delta.next.content],
  ]);
  let server: Server | undefined;
  if (needServer) {
    server = await startServer(dir, [key.pubPath], ['--poll-interval', '5']);
    for (const r of [good, bad]) {
      const up = await execa('node', [RELEASE_CLI, 'upload', r.path, '--server', server.proc.url], { env: { OTA_TOKEN: server.tokens.ops }, reject: false });
      if (up.exitCode !== 0) throw new Error(`power cut set-up: uploading ${r.version} failed: ${String(up.stderr)}`);
    }
  }
  return { dir, key, good, bad, delta, known, server, seq: 0 };
}

/** Which scenario runs every point in the CI subset. */
export const FAST_FULL = 'server-update';
const FAST_STRIDE = 4;
/** Runs of one point before a cut that never comes is given up (it is noted, not hidden). */
const MAX_ATTEMPTS = 4;

/** The whole part: one row per scenario. */
export async function runPowercut(opts: PowercutOptions): Promise<Row[]> {
  const chosen = SCENARIOS.filter((s) => opts.want(`powercut:${s.name}`));
  if (!chosen.length) return [];
  const { dir, cleanup } = await workDir('powercut');
  const rows: Row[] = [];
  let keep = false;
  const world = await makeWorld(dir, chosen.some((s) => s.server));
  try {
    for (const sc of chosen) {
      const t0 = Date.now();
      const id = `powercut:${sc.name}`;
      opts.log(`${id}: uncut run to count the durable writes`);
      const traced = await runPoint(world, sc, undefined);
      const failures = traced.problems.map((p) => `uncut run: ${p}`);
      const points = allPoints(traced.traces);
      const mode = opts.fast && sc.name !== FAST_FULL ? 'fast' : 'full';
      const stride = sc.fastStride ?? FAST_STRIDE;
      const chosenPoints = mode === 'fast' ? stridePoints(points, stride) : points;
      const kinds = new Map<string, number>();
      for (const p of points) kinds.set(p.write.split(' ')[0]!, (kinds.get(p.write.split(' ')[0]!) ?? 0) + 1);
      opts.log(`${id}: ${points.length} durable writes in ${traced.traces.length} agent processes; cutting at ${chosenPoints.length} of them, ${opts.jobs} at a time`);
      let done = 0;
      let retried = 0;
      const results = await pool(chosenPoints, opts.jobs, async (pt) => {
        let r = await runPoint(world, sc, { process: pt.process, k: pt.k });
        // The number of report-sent writes depends on when the sender's timer fires: a process
        // may make fewer writes than in the uncut run. Such a run is checked like any other;
        // the point is tried again on a fresh device until the cut happens.
        for (let attempt = 1; r.notReached && attempt < MAX_ATTEMPTS; attempt++) {
          if (r.problems.length) break;
          retried++;
          r = await runPoint(world, sc, { process: pt.process, k: pt.k });
        }
        done++;
        if (r.problems.length || done % 10 === 0 || done === chosenPoints.length) {
          opts.log(`${id}: ${done}/${chosenPoints.length}${r.problems.length ? ` ✗ process ${pt.process} write ${pt.k} (${pt.write}): ${r.problems[0]}` : ''}`);
        }
        return { pt, r };
      });
      let held = 0;
      let boots = 0;
      const notes: string[] = [];
      const cutKinds = new Map<string, number>();
      for (const { pt, r } of results) {
        boots += r.boots;
        if (r.cut) cutKinds.set(r.cut.write.split(' ')[0]!, (cutKinds.get(r.cut.write.split(' ')[0]!) ?? 0) + 1);
        if (r.problems.length) {
          keep = true;
          failures.push(`process ${pt.process} write ${pt.k} (${pt.write}): ${r.problems.join('; ')} [device kept in ${r.root}]`);
        } else if (r.notReached) {
          notes.push(`process ${pt.process} write ${pt.k} (${pt.write}): that process made fewer writes in ${MAX_ATTEMPTS} runs; each ran to rest uncut with every invariant holding`);
        } else {
          held++;
        }
      }
      if (retried) notes.push(`${retried} run(s) repeated because the planned process made fewer writes (report timing)`);
      const perPoint = results.length ? results.reduce((a, x) => a + x.r.seconds, 0) / results.length : 0;
      const writeKinds = [...kinds.entries()].map(([k, n]) => `${k} ${n}`).join(', ');
      rows.push(
        makeRow({
          id,
          part: 'powercut',
          what: sc.what,
          tried: results.filter((x) => !x.r.notReached || x.r.problems.length).length,
          held,
          figures: `${points.length} durable writes in ${traced.traces.length} agent processes (${writeKinds})${mode === 'fast' ? `; every ${stride === 3 ? '3rd' : `${stride}th`} cut in this run` : '; a cut after every one'} (cuts made after: ${[...cutKinds.entries()].map(([k, n]) => `${k} ${n}`).join(', ')}); invariants checked at every boot, after every cut and at rest; ended ${sc.expected.state}${sc.expected.reason ? ` (${sc.expected.reason})` : ''} on slot ${sc.expected.booted} as uncut; ${boots} boots through ${sc.bootloader === 'uboot' ? 'U-Boot' : 'GRUB'}; ${perPoint.toFixed(1)} s per point`,
          failures,
          notes,
          seconds: since(t0),
          mode,
        }),
      );
    }
  } finally {
    await world.server?.proc.stop();
    if (keep) opts.log(`power cut devices that did not hold are kept in ${dir}`);
    else await cleanup();
  }
  return rows;
}
