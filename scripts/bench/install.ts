/**
 * Benchmark 1: install throughput. The real server serves a bundle holding a random image over
 * 127.0.0.1; `ota-agent install URL` puts it into a raw slot file of a device booted through
 * GRUB (signature check, hashing while streaming, fsync and read-back all included: the time
 * is spawn to exit). The baseline, on the same bytes from the same server in the same run, is
 * `curl URL | tee >(openssl dgst -sha256) > slot; sync`. The page cache is dropped before each
 * run, and ours and the baseline alternate which goes first.
 */
import { execa } from 'execa';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { measuredInstall, type InstallRun } from './agent-run.js';
import { bootedDevice } from './device.js';
import type { BenchServer, Uploaded } from './fixture.js';
import { formatSummary, summarizeDir } from './profile.js';
import { dropCaches, median, timed, type BenchRow } from './util.js';

/** The baseline pipeline; `$TOKEN`, `$URL`, `$SLOT` come from the environment. */
export const BASELINE_SCRIPT = 'curl -s -H "Authorization: Bearer $TOKEN" "$URL" | tee >(openssl dgst -sha256) > "$SLOT"; sync';

/** A bundle of one random raw image, uploaded and ready to download. */
export interface ImageRelease {
  mib: number;
  uploaded: Uploaded;
}

/** Builds a bundle of `image` (`mib` MiB) as `version`, uploads it, deletes the local copy. */
export async function releaseImage(srv: BenchServer, image: string, mib: number, version: string): Promise<ImageRelease> {
  const bundle = join(srv.work, `image-${version}.otab`);
  await srv.build(version, ['--image', `rootfs=${image}`], bundle);
  const uploaded = await srv.upload(bundle);
  await rm(bundle, { force: true });
  return { mib, uploaded };
}

/** Installs `rel` once on a fresh raw device, cache dropped first; `nodeArgs` go to the agent's node. */
export async function installOnce(srv: BenchServer, rel: ImageRelease, token: string, dir: string, id: string, nodeArgs: string[] = []): Promise<InstallRun> {
  const root = join(dir, id);
  const dev = await bootedDevice({ root, id, kind: 'raw', slotSize: rel.mib * 2 ** 20, trustedKeys: [srv.pub], fullInstall: true });
  try {
    await dropCaches();
    return await measuredInstall(dev, srv.bundleUrl(rel.uploaded.sha256), { origin: srv.url, token }, dir, nodeArgs);
  } finally {
    await dev.stop();
    await rm(root, { recursive: true, force: true });
  }
}

/** The baseline once: seconds; throws unless OpenSSL printed the bundle's sha256. */
async function baselineOnce(srv: BenchServer, rel: ImageRelease, token: string, slot: string): Promise<number> {
  await dropCaches();
  let out = '';
  const seconds = await timed(async () => {
    const r = await execa('bash', ['-c', BASELINE_SCRIPT], { env: { TOKEN: token, URL: srv.bundleUrl(rel.uploaded.sha256), SLOT: slot } });
    out = String(r.stdout);
  });
  await rm(slot, { force: true });
  if (!out.includes(rel.uploaded.sha256)) throw new Error(`baseline: openssl printed ${JSON.stringify(out)}, not the bundle's sha256 ${rel.uploaded.sha256}`);
  return seconds;
}

/** What benchmark 1 measured. */
export interface InstallBench {
  rows: BenchRow[];
  runs: InstallRun[];
  baselineSeconds: number[];
  /** CPU profile summary of one more install, when the goal was missed and a directory was given. */
  profile?: string;
}

/** Runs benchmark 1: `runs` installs and baselines of a `mib` MiB random image; profiles one more install into `profileDir` if the goal is missed. */
export async function benchInstall(srv: BenchServer, image: string, mib: number, runs: number, profileDir?: string): Promise<InstallBench> {
  const rel = await releaseImage(srv, image, mib, '1.0.0');
  const token = await srv.enroll('bench-install');
  const dir = join(srv.work, 'install');
  const ours: InstallRun[] = [];
  const base: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Alternate the order so a drift in the machine's load does not favour one side.
    const oursFirst = i % 2 === 0;
    if (!oursFirst) base.push(await baselineOnce(srv, rel, token, join(srv.work, 'baseline-slot')));
    ours.push(await installOnce(srv, rel, token, dir, `dev-${i}`));
    if (oursFirst) base.push(await baselineOnce(srv, rel, token, join(srv.work, 'baseline-slot')));
  }
  const MB = rel.uploaded.size / 1e6;
  const o = median(ours.map((r) => r.seconds));
  const b = median(base);
  const dl = median(ours.map((r) => r.downloadSeconds));
  const rb = median(ours.map((r) => r.readBackSeconds));
  const ratio = b / o;
  let profile: string | undefined;
  if (ratio < 0.8 && profileDir) {
    const run = await installOnce(srv, rel, token, dir, 'dev-profiled', ['--cpu-prof', '--cpu-prof-dir', profileDir]);
    profile = `ota-agent install, ${mib} MiB, under --cpu-prof (${run.seconds.toFixed(2)} s; download ${run.downloadSeconds.toFixed(2)} s, read-back ${run.readBackSeconds.toFixed(2)} s):\n${formatSummary(await summarizeDir(profileDir))}`;
  }
  return {
    ...(profile ? { profile } : {}),
    baselineSeconds: base,
    runs: ours,
    rows: [
      {
        bench: 'install',
        metric: `ota-agent install URL, ${mib} MiB image into a raw slot`,
        ours: MB / o,
        baseline: MB / b,
        unit: 'MB/s',
        ratio,
        goal: '≥ 0.8',
        met: ratio >= 0.8,
        note: `median of ${runs}: ${o.toFixed(2)} s (download+verify+write+fsync ${dl.toFixed(2)} s, read-back ${rb.toFixed(2)} s) vs curl|tee openssl ${b.toFixed(2)} s`,
      },
      {
        bench: 'install',
        metric: `  of which download+verify+write+fsync`,
        ours: MB / dl,
        baseline: MB / b,
        unit: 'MB/s',
        ratio: b / dl,
        note: 'the downloading state alone (entry to installed), from the agent history; no goal',
      },
    ],
  };
}
