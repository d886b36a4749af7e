#!/usr/bin/env node
/**
 * Delta wire bytes: for old → new image pairs, what an otaab device downloads (delta-report's
 * planner, which the e2e test holds equal to the server's byte counters) against casync with
 * the old image as seed, on the same images in the same run. casync's figure is its new chunk
 * files (zstd) plus its .caibx index, which a device needs as well. Also sweeps the chunk sizes
 * on one pair. Apply time and memory: scripts/bench/delta-apply.ts (both are rows of npm run bench).
 *
 *   node dist/scripts/bench/delta.js [--size-mib 512] [--dir DIR] [--json FILE] [--sweep] [--no-ext4]
 */
import { execa } from 'execa';
import { randomFillSync } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { buildBundle } from '../../shared/bundle-writer.js';
import { deltaReport } from '../../shared/delta/report.js';
import { generateSigningKey, keyringFromArmored, readPrivateKey } from '../../shared/signing.js';
import { ROOT, randomFile } from './util.js';

const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '512' }, dir: { type: 'string' }, json: { type: 'string' }, sweep: { type: 'boolean' }, 'no-ext4': { type: 'boolean' } } });
const mib = Number(values['size-mib']);
const work = await mkdtemp(join(values.dir ?? tmpdir(), 'otaab-delta-bench-'));
const say = (l: string): void => void process.stderr.write(`bench delta: ${l}\n`);

async function dirBytes(dir: string): Promise<{ files: Set<string>; bytes: number }> {
  const files = new Set<string>();
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        files.add(p.slice(dir.length));
        bytes += (await stat(p)).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

/** casync make for both images into one store: the new version's new chunks plus its index. */
async function casyncBytes(oldImg: string, newImg: string, tag: string): Promise<number> {
  const store = join(work, `store-${tag}`);
  await execa('casync', ['make', `--store=${store}`, join(work, `${tag}-old.caibx`), oldImg]);
  const before = await dirBytes(store);
  await execa('casync', ['make', `--store=${store}`, join(work, `${tag}-new.caibx`), newImg]);
  const after = await dirBytes(store);
  let fresh = 0;
  for (const f of after.files) if (!before.files.has(f)) fresh += (await stat(join(store, f))).size;
  const caibx = (await stat(join(work, `${tag}-new.caibx`))).size;
  await rm(store, { recursive: true, force: true });
  return fresh + caibx;
}

const DEBS = ['coreutils', 'bash', 'perl-base', 'python3.11-minimal', 'libc6', 'libssl3', 'libstdc++6', 'util-linux'];

/**
 * Pair c: an ext4 root file system made with mkfs.ext4 -d from the trees of a few Debian
 * packages (fetched once with apt-get download into .cache/debs), then rebuilt with one package
 * swapped (bash for dash). Fixed UUID, hash seed and time, so only the content differs.
 */
async function ext4Pair(): Promise<[string, string]> {
  const cache = join(ROOT, '.cache', 'debs');
  await mkdir(cache, { recursive: true });
  const have = await readdir(cache);
  const missing = [...DEBS, 'dash'].filter((p) => !have.some((f) => f.startsWith(`${p}_`)));
  if (missing.length > 0) await execa('apt-get', ['download', '-q', ...missing], { cwd: cache });
  const debs = await readdir(cache);
  const make = async (tag: string, pkgs: string[]): Promise<string> => {
    const tree = join(work, `tree-${tag}`);
    await mkdir(tree, { recursive: true });
    for (const p of pkgs) await execa('dpkg-deb', ['-x', join(cache, debs.find((f) => f.startsWith(`${p}_`))!), tree]);
    const img = join(work, `ext4-${tag}.img`);
    await execa('mkfs.ext4', ['-q', '-F', '-d', tree, '-U', '6d2e0f1c-4b0a-4c7e-9d43-0f3a3b2c1d00', '-E', 'hash_seed=1b4e28ba-2fa1-11d2-883f-0016d3cca427', '-L', 'rootfs', img, '160M'], {
      env: { E2FSPROGS_FAKE_TIME: '1764547200' },
    });
    await rm(tree, { recursive: true, force: true });
    return img;
  };
  return [await make('old', DEBS), await make('new', DEBS.map((p) => (p === 'bash' ? 'dash' : p)))];
}

async function patch(src: string, dst: string, regions: [number, number][]): Promise<void> {
  await copyFile(src, dst);
  const fh = await open(dst, 'r+');
  try {
    for (const [at, len] of regions) await fh.write(randomFillSync(Buffer.alloc(len)), 0, len, at);
  } finally {
    await fh.close();
  }
}

const k = await generateSigningKey('bench');
const key = await readPrivateKey(Buffer.from(k.privateKey), 'bench');
const keyring = await keyringFromArmored([k.publicKey]);
async function bundle(img: string, out: string, params?: { min: number; avg: number; max: number }): Promise<string> {
  await buildBundle({ product: 'bench', version: '1.0.0', compatible: ['x'], key, out, index: params ? { params } : {}, payloads: [{ name: 'rootfs', type: 'image', path: img, gzip: true }] });
  return out;
}

const results: Record<string, unknown>[] = [];
try {
  const size = mib * 1024 * 1024;
  const old = join(work, 'old.img');
  say(`writing a ${mib} MiB random image`);
  await randomFile(old, mib);
  const pairs: [string, [number, number][]][] = [
    ['a: one changed 4 MiB region', [[Math.floor(size / 2), 4 << 20]]],
    ['b: 200 scattered 4 KiB changes', Array.from({ length: 200 }, (_, i) => [Math.floor(((i + 0.5) * size) / 200) & ~4095, 4096] as [number, number])],
  ];
  const oldBundle = await bundle(old, join(work, 'old.otab'));
  for (const [name, regions] of pairs) {
    const tag = name[0]!;
    const img = join(work, `${tag}.img`);
    await patch(old, img, regions);
    say(`${name}: otaab`);
    const r = await deltaReport(oldBundle, await bundle(img, join(work, `${tag}.otab`)), keyring);
    say(`${name}: casync`);
    const casync = await casyncBytes(old, img, tag);
    results.push({ pair: name, otaabWireBytes: r.wireBytes, otaabRequests: r.requests, otaabHeadBytes: r.headBytes, bundleBytes: r.bundleBytes, casyncBytes: casync, ratio: r.wireBytes / casync });
    say(`${name}: otaab ${r.wireBytes} bytes in ${r.requests} requests (head ${r.headBytes}), casync ${casync}`);
  }
  if (!values['no-ext4']) {
    say('c: an ext4 root file system with one Debian package swapped');
    const [o, n] = await ext4Pair();
    const r = await deltaReport(await bundle(o, join(work, 'c-old.otab')), await bundle(n, join(work, 'c.otab')), keyring);
    const casync = await casyncBytes(o, n, 'c');
    results.push({ pair: 'c: ext4 root fs, one Debian package swapped', otaabWireBytes: r.wireBytes, otaabRequests: r.requests, otaabHeadBytes: r.headBytes, bundleBytes: r.bundleBytes, casyncBytes: casync, ratio: r.wireBytes / casync });
    say(`c: otaab ${r.wireBytes} bytes in ${r.requests} requests (head ${r.headBytes}), casync ${casync}, full bundle ${r.bundleBytes}`);
  }
  // Chunk sizes on pair b (scattered changes favour small chunks, the index favours large ones).
  for (const avg of values.sweep ? [16, 32, 64, 128] : []) {
    const params = { min: (avg * 1024) / 4, avg: avg * 1024, max: avg * 1024 * 4 };
    const o = await bundle(old, join(work, `old-${avg}.otab`), params);
    const n = await bundle(join(work, 'b.img'), join(work, `b-${avg}.otab`), params);
    const r = await deltaReport(o, n, keyring);
    results.push({ pair: `b with ${params.min / 1024}/${avg}/${params.max / 1024} KiB chunks`, otaabWireBytes: r.wireBytes, otaabRequests: r.requests, otaabHeadBytes: r.headBytes });
    say(`chunks ${avg} KiB avg: ${r.wireBytes} bytes, ${r.requests} requests, head ${r.headBytes}`);
    await rm(o);
    await rm(n);
  }
  if (values.json) await writeFile(values.json, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
