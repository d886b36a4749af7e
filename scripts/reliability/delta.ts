/**
 * The delta rows of the reliability suite. Releases: two raw images that share all but a few
 * chunks, each in an indexed (format 2) gzip bundle, so that a device whose running slot holds
 * the first installs the second as a delta (its chunks read from the running slot, the rest by
 * ranges of the bundle). Rows: `powercut:local-delta-update` (powercut.ts runs it as one of its
 * scenarios) and `network:delta-link-cut` (below; network.ts runs it with its server and proxy).
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Store } from '../../agent/store/store.js';
import { buildBundle } from '../../shared/bundle-writer.js';
import { DEFAULT_CHUNKING } from '../../shared/chunker.js';
import { deltaReport } from '../../shared/delta/report.js';
import { sha256Hex } from '../../shared/hashing.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { loadKeyring } from '../../shared/signing.js';
import { api } from '../fleet/server.js';
import type { FaultProxy } from '../net/fault-proxy.js';
import { deviceReports, waitRest, type ServerView } from './drive.js';
import { checkAtRest, checkServer, type Ending } from './invariants.js';
import { makeRow, type Row } from './results.js';
import { PowerRig } from './rig.js';
import { COMPATIBLE, RELEASE_CLI, enrollDevice, since, type Release, type ReleaseKey, type Server } from './world.js';

/** The versions of the delta pair (distinct from the fs releases: the suite's known releases are by version). */
export const DELTA_BASE = '2.0.0';
export const DELTA_NEXT = '2.1.0';

async function indexed(dir: string, key: ReleaseKey, version: string, image: Buffer): Promise<Release> {
  await mkdir(dir, { recursive: true });
  const imagePath = join(dir, `rootfs-${version}.img`);
  await writeFile(imagePath, image);
  const path = join(dir, `gateway-${version}.otab`);
  const r = await buildBundle({ product: 'gateway', version, compatible: [COMPATIBLE], payloads: [{ name: 'rootfs', type: 'image', path: imagePath, gzip: true }], key: key.key, out: path, index: {} });
  return { version, path, sha256: r.sha256, size: r.size, content: { kind: 'raw', length: image.length, sha256: sha256Hex(image) } };
}

/**
 * A healthy raw release of `bytes` random bytes and the next one: the same image with its header
 * and `regions` regions of 48 KiB rewritten (about one 32 KiB chunk each and its neighbour).
 */
export async function deltaPair(dir: string, key: ReleaseKey, bytes = 1536 * 1024, regions = 3): Promise<{ base: Release; next: Release }> {
  const base = Buffer.concat([Buffer.from(`HEALTHY ${DELTA_BASE}\n`), randomBytes(bytes)]);
  const next = Buffer.from(base);
  Buffer.from(`HEALTHY ${DELTA_NEXT}\n`).copy(next, 0);
  for (let i = 1; i <= regions; i++) randomBytes(48 * 1024).copy(next, Math.floor((i * bytes) / (regions + 1)));
  return { base: await indexed(dir, key, DELTA_BASE, base), next: await indexed(dir, key, DELTA_NEXT, next) };
}

/** The row id of the delta link cuts (network part). */
export const DELTA_CUTS_ROW = 'network:delta-link-cut';
/** Cuts per run. */
const CUTS = 20;

/** What the network part shares with this row. */
export interface DeltaCutWorld {
  dir: string;
  key: ReleaseKey;
  server: Server;
  proxy: FaultProxy;
  fast: boolean;
  log: (line: string) => void;
}

async function upload(w: DeltaCutWorld, r: Release): Promise<void> {
  const up = await execa('node', [RELEASE_CLI, 'upload', r.path, '--server', w.server.proc.url], { env: { OTA_TOKEN: w.server.tokens.ops }, reject: false });
  if (up.exitCode !== 0) throw new Error(`uploading ${r.version} failed: ${String(up.stderr)}`);
}

/** Waits for `version` to be at rest, committed on `booted`, and returns what did not hold. */
async function settle(rig: PowerRig, view: ServerView, txBefore: number, booted: 'A' | 'B'): Promise<{ txId: string; problems: string[] }> {
  const txId = await waitRest(rig, txBefore, view, 240_000);
  await rig.stop();
  const problems = [...rig.problems];
  const seen = await rig.seen();
  const s = Store.open(rig.dataDir);
  let end: (Ending & { finished: boolean }) | undefined;
  try {
    const tx = s.transaction(txId);
    end = tx ? { state: tx.state, reason: tx.reason, finished: tx.finishedAt !== null } : undefined;
    problems.push(...checkAtRest(seen, end, s.current() !== undefined, { state: 'committed', booted }));
  } finally {
    s.close();
  }
  if (end) problems.push(...checkServer(await deviceReports(view), txId, end));
  return { txId, problems };
}

/**
 * A delta install from the real server through the fault proxy, its bundle requests cut at 20
 * seeded offsets: the device commits DELTA_BASE (no faults), then DELTA_NEXT goes by delta over
 * the cut link. Holds when the update commits on slot A with exactly the release, it was a delta
 * install taking every planned chunk from the running slot, every request after a cut asks for
 * a range (never the whole bundle again), and the proxy sent less than one average chunk more
 * per cut than `delta-report` says an unbroken delta install takes.
 */
export async function runDeltaCuts(w: DeltaCutWorld, seed: number): Promise<Row> {
  const t0 = Date.now();
  const root = join(w.dir, 'delta-cuts');
  const problems: string[] = [];
  let figures = '';
  let rig: PowerRig | undefined;
  try {
    const { base, next } = await deltaPair(join(root, 'releases'), w.key, 3 * 1024 * 1024, 4);
    for (const r of [base, next]) await upload(w, r);
    const id = 'net-delta-cuts';
    const token = await enrollDevice(w.server, id, id);
    rig = await PowerRig.create({
      root: join(root, 'device'),
      id,
      kind: 'raw',
      trustedKeys: [w.key.pubPath],
      known: new Map([
        [base.version, base.content],
        [next.version, next.content],
      ]),
      server: { url: w.proxy.url, token, serverKey: w.server.serverKey, pollSeconds: 1 },
    });
    const cfg = JSON.parse(await readFile(rig.device.configPath, 'utf8')) as { server?: Record<string, unknown> };
    cfg.server = { ...cfg.server, stallTimeoutSeconds: 2 };
    await writeFile(rig.device.configPath, `${JSON.stringify(cfg, null, 2)}\n`);
    const view: ServerView = { url: w.server.proc.url, ops: w.server.tokens.ops, device: id };
    const publish = (version: string): Promise<unknown> => api(w.server.proc.url, w.server.tokens.ops, 'PUT', `/v1/channels/${id}`, { product: 'gateway', version });

    await publish(base.version);
    rig.arm();
    rig.start();
    const first = await settle(rig, view, 0, 'B');
    problems.push(...first.problems.map((p) => `${base.version} (no faults): ${p}`));

    const path = `/v1/bundles/${next.sha256}`;
    const rng = seededRandom(seed ^ 0x5eed);
    // 1 byte to 8 KiB into each of the first 20 answers for the bundle: the head request (8 KiB)
    // and every chunk range can be cut.
    const offsets = Array.from({ length: CUTS }, () => 1 + Math.floor(rng() * 8191));
    const logFrom = w.proxy.log.length;
    w.proxy.setPlan((r) => (r.path === path && r.n < CUTS ? { kind: 'cut', afterBytes: offsets[r.n]! } : { kind: 'pass' }));
    const t1 = Date.now();
    await publish(next.version);
    rig.arm();
    rig.start();
    const second = await settle(rig, view, 1, 'A');
    w.proxy.setPlan(() => ({ kind: 'pass' }));
    problems.push(...second.problems.map((p) => `${next.version} (cut): ${p}`));

    const s = Store.open(rig.dataDir);
    let details: Record<string, unknown> | null | undefined;
    try {
      details = s.events({ transactionId: second.txId, limit: 100 }).find((e) => e.toState === 'installed')?.details;
    } finally {
      s.close();
    }
    if (details?.delta !== true) problems.push(`${next.version} was not installed as a delta`);
    else if (details.localMisses !== 0) problems.push(`${details.localMisses} planned chunk(s) did not hash in the running slot`);
    const report = await deltaReport(base.path, next.path, await loadKeyring([w.key.pubPath]));
    const reqs = w.proxy.log.slice(logFrom).filter((l) => l.path === path);
    const cut = reqs.filter((l) => l.fault === 'cut').length;
    const sent = w.proxy.bytesSent.get(path) ?? 0;
    const resent = sent - report.wireBytes;
    const avg = DEFAULT_CHUNKING.avg;
    if (cut !== CUTS) problems.push(`${cut} of the ${CUTS} planned cuts happened`);
    if (resent >= CUTS * avg) problems.push(`${resent} bytes re-sent for ${CUTS} cuts: more than one ${avg >> 10} KiB chunk per cut`);
    const whole = reqs.filter((l) => !/^bytes=\d+-\d+$/.test(l.range ?? '')).length;
    if (whole) problems.push(`${whole} request(s) for the whole bundle (no single range)`);
    figures =
      `${cut} cuts (seed ${seed}, 1 B to 8 KiB into each of the first ${CUTS} answers); ${sent} bytes sent for ${report.wireBytes} planned by delta-report ` +
      `(${resent} re-sent, ${(resent / CUTS).toFixed(0)} per cut; goal < ${avg} = one average chunk); ${reqs.length} range requests for ${report.requests} planned; ` +
      `bundle ${report.bundleBytes} bytes, image ${report.imageBytes} with ${report.localBytes} from the running slot; ${since(t1).toFixed(0)} s publish to commit`;
  } catch (err) {
    problems.push(err instanceof Error ? err.message.split('\n')[0]! : String(err));
    await rig?.stop().catch(() => undefined);
  }
  await rm(root, { recursive: true, force: true });
  w.log(`${DELTA_CUTS_ROW}: ${figures}${problems.length ? ` ✗ ${problems[0]}` : ''}`);
  return makeRow({
    id: DELTA_CUTS_ROW,
    part: 'network',
    what: 'a delta install over a link cut 20 times (raw slots, chunks from the running slot, ranges through the fault proxy)',
    tried: 1,
    held: problems.length ? 0 : 1,
    figures,
    failures: problems,
    seconds: since(t0),
    mode: w.fast ? 'fast' : 'full',
  });
}
