#!/usr/bin/env node
/**
 * Apply time and memory of a delta install against a full install of the same image, both from
 * a local bundle file onto a booted simulated raw-slot device: slot A holds the old image and
 * the agent its kept index (as after a commit), so the delta run reads A and writes B. Runs
 * alternate (full, delta, full, delta, ...); casync extracts the same new image with the old
 * one as seed from a local store in the same run (wall time and peak RSS from GNU time).
 *
 *   node dist/scripts/bench/delta-apply.js [--size-mib 512] [--changed-mib 4] [--url] [--runs 2] [--dir DIR] [--json FILE] [--no-casync] [--cpu-prof DIR]
 *
 * --url installs from http://127.0.0.1 (a static server in this process that honours single
 * ranges, as a CDN does) instead of the bundle file: the delta's ranges then come over HTTP.
 *
 * --changed-mib N makes N MiB in the middle of the new image random (4 by default, a package
 * update; more, to see what fetching most chunks costs).
 *
 * --cpu-prof DIR writes a V8 CPU profile of each install's agent process into DIR.
 *
 * The agent is the one-file bundle (dist/bundle/ota-agent.mjs, made afresh), as shipped and as
 * the memory and block-device benchmarks run it: the many-file dist/agent/cli.js parses some
 * 300 modules before its first statement, and its young generation grows meanwhile
 * (agent/infra/young-generation.ts).
 */
import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBundle } from '../../shared/bundle-writer.js';
import { indexRawImage } from '../../shared/chunk-build.js';
import { packIndex } from '../../shared/chunk-index.js';
import { generateSigningKey, readPrivateKey } from '../../shared/signing.js';
import { measuredInstall } from './agent-run.js';
import { agentEntry } from './blockdev.js';
import { bootedDevice } from './device.js';
import { COMPATIBLE } from './fixture.js';
import { randomFile, ROOT } from './util.js';
import { readFile, writeFile } from 'node:fs/promises';

const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '512' }, 'changed-mib': { type: 'string', default: '4' }, url: { type: 'boolean' }, runs: { type: 'string', default: '2' }, dir: { type: 'string' }, json: { type: 'string' }, 'no-casync': { type: 'boolean' }, 'cpu-prof': { type: 'string' } } });
const mib = Number(values['size-mib']);
const runs = Math.max(1, Number(values.runs));
const changed = Number(values['changed-mib']);
if (!Number.isInteger(changed) || changed < 0 || changed > mib - 1) {
  process.stderr.write(`delta-apply: --changed-mib must be an integer from 0 to ${mib - 1}, not "${values['changed-mib']}"\n`);
  process.exit(2);
}

/** Serves `file` at /FILE on 127.0.0.1: whole, or one range of it (206), as a static origin does. */
async function staticOrigin(file: string): Promise<{ url: string; server: Server }> {
  const size = (await stat(file)).size;
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start > end) {
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    res.writeHead(m ? 206 : 200, { 'content-length': end - start + 1, ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) });
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/new.otab`, server };
}

/** One install, as the bench table wants it. */
interface ApplyRun {
  mode: 'full' | 'delta' | 'casync';
  seconds: number;
  writeSeconds?: number;
  readBackSeconds?: number;
  /** Peak anonymous resident memory (casync: peak RSS, GNU time's %M). */
  peakAnonMiB: number;
  peakRssMiB: number;
}

/** casync extract of NEW with OLD as seed, from a store holding both (what a device would have fetched). */
async function casyncApply(old: string, img: string): Promise<ApplyRun> {
  const store = join(work, 'casync-store');
  await execa('casync', ['make', `--store=${store}`, join(work, 'old.caibx'), old]);
  await execa('casync', ['make', `--store=${store}`, join(work, 'new.caibx'), img]);
  const out = join(work, 'casync-out.img');
  const t = await execa('/usr/bin/time', ['-f', 'TIME %e %M', 'casync', 'extract', `--store=${store}`, `--seed=${old}`, join(work, 'new.caibx'), out], { all: true });
  const m = /TIME ([\d.]+) (\d+)/.exec(t.all ?? '');
  await rm(out, { force: true });
  await rm(store, { recursive: true, force: true });
  if (!m) throw new Error(`casync extract: no figures from GNU time in: ${String(t.all).slice(-500)}`);
  const kib = Number(m[2]);
  return { mode: 'casync', seconds: Number(m[1]), peakAnonMiB: kib / 1024, peakRssMiB: kib / 1024 };
}

const work = await mkdtemp(join(values.dir ?? tmpdir(), 'otaab-delta-apply-'));
try {
  const k = await generateSigningKey('bench');
  const key = await readPrivateKey(Buffer.from(k.privateKey), 'bench');
  await writeFile(join(work, 'release.pub'), k.publicKey);
  const old = join(work, 'old.img');
  await randomFile(old, mib);
  const head = Buffer.from('HEALTHY old\n');
  let fh = await open(old, 'r+');
  await fh.write(head, 0, head.length, 0);
  await fh.close();
  const img = join(work, 'new.img');
  await copyFile(old, img);
  fh = await open(img, 'r+');
  await fh.write(Buffer.from('HEALTHY new\n'), 0, 12, 0);
  // In pieces: a buffer of the whole change would be the bench's memory, not the agent's.
  const from = Math.min(Math.floor((mib << 20) / 2), (mib - changed) << 20);
  for (let done = 0; done < changed << 20; done += 4 << 20) {
    const n = Math.min(4 << 20, (changed << 20) - done);
    await fh.write(randomFillSync(Buffer.alloc(n)), 0, n, from + done);
  }
  await fh.close();
  const bundle = join(work, 'new.otab');
  await buildBundle({ product: 'bench', version: '2.0.0', compatible: [COMPATIBLE], key, out: bundle, index: {}, payloads: [{ name: 'rootfs', type: 'image', path: img, gzip: true }] });
  const oldIndex = packIndex((await indexRawImage(old)).index);
  const rows: string[] = [];
  const results: ApplyRun[] = [];
  const cli = await agentEntry(ROOT);
  const origin = values.url ? await staticOrigin(bundle) : undefined;
  const modes = Array.from({ length: runs }, () => ['full', 'delta'] as const).flat();
  for (const mode of modes) {
    const dev = await bootedDevice({
      root: join(work, `dev-${rows.length}`),
      id: `apply-${rows.length}`,
      kind: 'raw',
      slotSize: (mib + 8) << 20,
      trustedKeys: [join(work, 'release.pub')],
      beforeBoot: async (d) => {
        await copyFile(old, d.dev.slots.A);
        const dataDir = join(work, `dev-${rows.length}`, 'data');
        await mkdir(join(dataDir, 'delta'), { recursive: true });
        await writeFile(join(dataDir, 'delta', 'slot-A.idx'), oldIndex);
        if (mode === 'full') {
          const config = JSON.parse(await readFile(d.configPath, 'utf8')) as Record<string, unknown>;
          await writeFile(d.configPath, JSON.stringify({ ...config, delta: { enabled: false } }, null, 2));
        }
      },
    });
    try {
      const prof = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof'], '--cpu-prof-name', `${mode}-${rows.length}.cpuprofile`] : [];
      const r = await measuredInstall(dev, origin?.url ?? bundle, { origin: 'http://127.0.0.1:9', token: 'none' }, work, prof, cli);
      results.push({ mode, seconds: r.seconds, writeSeconds: r.downloadSeconds, readBackSeconds: r.readBackSeconds, peakAnonMiB: r.peakAnonMiB, peakRssMiB: r.peakRssMiB });
      rows.push(`${mode}: ${r.seconds.toFixed(2)} s (write ${r.downloadSeconds.toFixed(2)} s, read-back ${r.readBackSeconds.toFixed(2)} s), peak RssAnon ${r.peakAnonMiB.toFixed(1)} MiB, VmHWM ${r.peakRssMiB.toFixed(1)} MiB`);
      if (mode === 'delta') {
        // Where the delta write's main thread spent its time (agent/delta/apply.ts, DeltaPhases).
        const h = await dev.agent(['history', '--json', '--limit', '1']);
        const ev = (JSON.parse(h.stdout) as { transactions: { events: { toState: string | null; details: { phasesMs?: Record<string, number> } | null }[] }[] }).transactions[0]?.events.find((e) => e.toState === 'installed');
        if (ev?.details?.phasesMs) rows[rows.length - 1] += `; write phases (ms): ${JSON.stringify(ev.details.phasesMs)}`;
      }
      process.stderr.write(`${rows.at(-1)}\n`);
    } finally {
      await dev.stop();
      await rm(join(work, `dev-${rows.length - 1}`), { recursive: true, force: true });
    }
  }
  if (!values['no-casync']) {
    const c = await casyncApply(old, img);
    results.push(c);
    rows.push(`casync extract --seed: ${c.seconds.toFixed(2)} s, peak RSS ${c.peakRssMiB.toFixed(1)} MiB`);
    process.stderr.write(`${rows.at(-1)}\n`);
  }
  if (values.json) await writeFile(values.json, `${JSON.stringify({ mib, runs: results }, null, 2)}\n`);
  origin?.server.close();
  process.stdout.write(`${mib} MiB image, ${changed} MiB changed, gzip bundle from ${origin ? 'a static HTTP origin on 127.0.0.1' : 'a local file'}:\n${rows.join('\n')}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
