/**
 * Benchmark 6: the install on the peers' own ground. A random image in a local signed bundle,
 * installed into the inactive slot, a loop device over a fresh sparse file (`losetup -f
 * --show`), by `ota-agent install FILE` on a device booted through GRUB (signature, hashing,
 * write, fsync, O_DIRECT read-back, boot environment), and, when their Debian packages are
 * installed, by RAUC and by the Mender client on the same image (scripts/bench/peers.ts), plus
 * the floor `dd bs=4M conv=fsync` (no hashing, no signature). The page cache is dropped before
 * each run; a run's time is the installer's wall time plus a `sync` after it. Runs rotate the
 * order of the contestants so a drift in the machine's load favours none. Needs root.
 */
import { execa } from 'execa';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { measuredInstall, type InstallRun } from './agent-run.js';
import { bootedDevice } from './device.js';
import type { BenchServer } from './fixture.js';
import { detachLoop, attachLoop, sha256Prefix, sparseFile } from './loopdev.js';
import { Mender, Rauc, peersAvailable, type Peer, type PeerRun } from './peers.js';
import { formatSummary, summarizeDir } from './profile.js';
import { dropCaches, median, type BenchRow } from './util.js';

/** otaab's install time may be at most this share of RAUC's. */
export const RAUC_SHARE = 0.67;
/** Process start to the first payload byte, ms. */
export const FIRST_BYTE_MS = 150;

/** One otaab run on the block device. */
export interface OtaabBlockRun extends InstallRun {
  /** The agent's wall time (spawn to exit). */
  installSeconds: number;
  /** The sync after it. */
  syncSeconds: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

/** What benchmark 6 measured. */
export interface BlockBench {
  rows: BenchRow[];
  runs: Record<string, unknown[]>;
  /** Peers not run, and why. */
  skipped: string[];
  profile?: string;
}

/**
 * The agent to run: the one-file bundle (`npm run bundle`, made afresh here so that it holds
 * the code just built), or the compiled CLI where esbuild is not installed.
 */
export async function agentEntry(root: string): Promise<string> {
  try {
    const { bundle } = (await import('../bundle.js')) as { bundle: (out: string) => Promise<string[]> };
    const files = await bundle(join(root, 'dist', 'bundle'));
    const agent = files.find((f) => f.endsWith('ota-agent.mjs'));
    if (agent) return agent;
  } catch {
    // no esbuild: the compiled CLI, many files
  }
  return join(root, 'dist', 'agent', 'cli.js');
}

/** One `ota-agent install FILE` into a loop device over a fresh slot file of `bytes`. */
export async function otaabOnce(srv: BenchServer, bundle: string, bytes: number, sha256: string, dir: string, id: string, cli: string, nodeArgs: string[] = []): Promise<OtaabBlockRun> {
  const root = join(dir, id);
  const dev = await bootedDevice({ root, id, kind: 'raw', slotSize: bytes, trustedKeys: [srv.pub], fullInstall: true });
  let loop: string | undefined;
  let run: OtaabBlockRun;
  try {
    try {
      loop = await attachLoop(dev.dev.slots.B);
      const config = JSON.parse(await readFile(dev.configPath, 'utf8')) as { slots: { name: string; path: string }[] };
      config.slots.find((s) => s.name === 'B')!.path = loop;
      await writeFile(dev.configPath, `${JSON.stringify(config, null, 2)}\n`);
      await dropCaches();
      // The agent's spawn to its exit, then a sync at once: what RAUC's and Mender's runs time
      // (peers.ts). Reading the agent's history afterwards (measuredInstall) is not the install's.
      const r = await measuredInstall(dev, bundle, { origin: 'http://127.0.0.1:9', token: '' }, dir, nodeArgs, cli, () => execa('sync'));
      run = { ...r, installSeconds: r.seconds, seconds: r.seconds + r.afterSeconds, syncSeconds: r.afterSeconds };
    } finally {
      if (loop) await detachLoop(loop);
      await dev.stop();
    }
    const got = await sha256Prefix(dev.dev.slots.B, bytes);
    if (got !== sha256) throw new Error(`otaab: slot B reads ${got} after the install, the image is ${sha256}`);
    return run;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The floor: `dd bs=4M conv=fsync` of the image into a loop device, plus a sync. */
async function ddOnce(image: string, bytes: number, slotFile: string): Promise<PeerRun> {
  await sparseFile(slotFile, bytes);
  const loop = await attachLoop(slotFile);
  try {
    await dropCaches();
    const t0 = now();
    await execa('dd', [`if=${image}`, `of=${loop}`, 'bs=4M', 'conv=fsync', 'status=none']);
    const t1 = now();
    await execa('sync');
    const t2 = now();
    return { seconds: t2 - t0, installSeconds: t1 - t0, syncSeconds: t2 - t1, peakAnonMiB: NaN };
  } finally {
    await detachLoop(loop);
    await rm(slotFile, { force: true });
  }
}

const span = (xs: number[], digits = 2): string => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

/** Runs benchmark 6 on `image` (`mib` MiB), `runs` runs of each contestant. */
export async function benchBlockdev(srv: BenchServer, image: string, mib: number, runs: number, cli: string, profileDir?: string): Promise<BlockBench> {
  const dir = join(srv.work, 'blockdev');
  const bytes = mib * 2 ** 20; // not `<< 20`: 4 GiB overflows 32 bits
  const bundle = join(srv.work, 'blockdev.otab');
  await srv.build('6.0.0', ['--image', `rootfs=${image}`], bundle);
  const sha256 = await sha256Prefix(image, bytes);
  const avail = await peersAvailable();
  const skipped: string[] = [];
  const peers: Peer[] = [];
  try {
    if (avail.rauc) peers.push(await Rauc.setup(join(dir, 'rauc'), image, bytes, sha256));
    else skipped.push('RAUC (install rauc rauc-service squashfs-tools dbus)');
    if (avail.mender) peers.push(await Mender.setup(join(dir, 'mender'), image, bytes, sha256));
    else skipped.push('Mender (install mender-client mender-artifact)');
    const ours: OtaabBlockRun[] = [];
    const theirs = new Map<string, PeerRun[]>([...peers.map((p) => [p.name, []] as [string, PeerRun[]]), ['dd', []]]);
    type Step = () => Promise<void>;
    const steps: Step[] = [
      async () => void ours.push(await otaabOnce(srv, bundle, bytes, sha256, dir, `blk-${ours.length}`, cli)),
      ...peers.map((p): Step => async () => void theirs.get(p.name)!.push(await p.run(join(dir, `${p.name}-slot.img`)))),
      async () => void theirs.get('dd')!.push(await ddOnce(image, bytes, join(dir, 'dd-slot.img'))),
    ];
    for (let i = 0; i < runs; i++) {
      // Rotate who goes first: a drift in the machine's load then favours no one.
      for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!();
    }
    const o = ours.map((r) => r.seconds);
    const oMed = median(o);
    const rows: BenchRow[] = [];
    const dl = median(ours.map((r) => r.downloadSeconds));
    const rb = median(ours.map((r) => r.readBackSeconds));
    rows.push({
      bench: 'blockdev',
      metric: `ota-agent install FILE, ${mib} MiB image into a loop-device slot (seconds)`,
      ours: oMed,
      unit: 's',
      note: `median (min–max) of ${runs}: ${span(o)} s, of which the final sync ${span(ours.map((r) => r.syncSeconds))} s; downloading state ${dl.toFixed(2)} s, read-back state ${rb.toFixed(2)} s; agent ${cli.endsWith('.mjs') ? 'the bundle' : 'dist/agent/cli.js'}`,
    });
    for (const p of peers) {
      const t = theirs.get(p.name)!.map((r) => r.seconds);
      const share = oMed / median(t);
      const isRauc = p.name === 'RAUC';
      rows.push({
        bench: 'blockdev',
        metric: `  against ${isRauc ? 'RAUC 1.8 (plain bundle, CMS)' : 'Mender 3.4 standalone'}: otaab's time / theirs`,
        ours: oMed,
        baseline: median(t),
        unit: 's',
        ratio: share,
        goal: isRauc ? `≤ ${RAUC_SHARE}` : '< 1',
        met: isRauc ? share <= RAUC_SHARE : share < 1,
        note: `${p.name} ${span(t)} s (sync after it ${span(theirs.get(p.name)!.map((r) => r.syncSeconds))} s), same run, alternating; the ratio column is a time ratio here: lower is better`,
      });
    }
    const dd = theirs.get('dd')!.map((r) => r.seconds);
    rows.push({ bench: 'blockdev', metric: '  floor: dd bs=4M conv=fsync into the loop device (no hashing, no signature)', ours: oMed, baseline: median(dd), unit: 's', ratio: oMed / median(dd), note: `dd ${span(dd)} s` });
    const fb = ours.map((r) => r.firstByteMs);
    rows.push({
      bench: 'blockdev',
      metric: 'ota-agent install: process start to the first payload byte',
      ours: median(fb),
      unit: 'ms',
      goal: `≤ ${FIRST_BYTE_MS}`,
      met: median(fb) <= FIRST_BYTE_MS,
      note: `median (min–max) of ${runs}: ${span(fb, 0)} ms (performance mark of the bundle reader, from Node's time origin); signature check included`,
    });
    const anon = ours.map((r) => r.peakAnonMiB);
    rows.push({
      bench: 'blockdev',
      metric: 'peak RssAnon of the install on the block device',
      ours: median(anon),
      unit: 'MiB',
      goal: '≤ 48',
      met: median(anon) <= 48,
      note: [`otaab ${span(anon, 1)}`, ...peers.map((p) => `${p.name} ${span(theirs.get(p.name)!.map((r) => r.peakAnonMiB), 1)}`)].join('; ') + ' MiB (sum over the working process tree, /proc every 20 ms; RAUC: its service)',
    });
    let profile: string | undefined;
    if (profileDir && rows.some((r) => r.met === false)) {
      const run = await otaabOnce(srv, bundle, bytes, sha256, dir, 'blk-profiled', cli, ['--cpu-prof', '--cpu-prof-dir', profileDir]);
      profile = `ota-agent install FILE into a loop device, ${mib} MiB, under --cpu-prof (${run.seconds.toFixed(2)} s; downloading ${run.downloadSeconds.toFixed(2)} s, read-back ${run.readBackSeconds.toFixed(2)} s):\n${formatSummary(await summarizeDir(profileDir))}`;
    }
    return { rows, runs: { otaab: ours, ...Object.fromEntries(theirs) }, skipped, ...(profile ? { profile } : {}) };
  } finally {
    for (const p of peers) await p.close();
    await rm(bundle, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
}
