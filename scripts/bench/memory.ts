/**
 * Benchmark 2: agent memory during an install, on every install path, at each image size: a
 * raw image from a local bundle file and from the server's URL, a gzip image, a whole root
 * file system archive into an fs slot, and a module into an fs slot whose running system it
 * joins. The figure is the peak RssAnon of the `ota-agent install` process (what the agent
 * itself needs; mapped file pages neither hide nor inflate it), polled from /proc every 20 ms,
 * and VmHWM at exit for reference; with the floors under them: a bare `node -e 0`, and the
 * agent with its modules loaded and no work done.
 *
 * A delta install (a new slot built from chunks of the running one) is one more path: once
 * ota-release builds delta bundles, it is a row of PATHS below, installing over a slot that
 * holds the release before.
 */
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { footprint, measuredInstall, type InstallRun } from './agent-run.js';
import { bootedDevice } from './device.js';
import type { BenchServer } from './fixture.js';
import { median, randomFile, type BenchRow } from './util.js';

/** Memory budget of the agent during an install (RssAnon), MiB. */
export const LIMIT_MIB = 48;
/** How much more the largest image may cost than the smallest, MiB. */
export const FLAT_MIB = 4;

/** An install path: how its bundle is made and what device takes it. */
interface InstallPath {
  name: string;
  /** Slot kind of the device. */
  kind: 'raw' | 'fs';
  /** Served by the server (a URL) rather than read from a local file. */
  url?: boolean;
  /** ota-release build payload arguments for `mib` MiB of content made in `dir`. */
  payload(dir: string, mib: number): Promise<string[]>;
  /** Fills slot A before the device boots (the running system a module joins). */
  slotA?(dir: string): Promise<string>;
}

const MODULE = 'bench-module';

/** `mib` files of 1 MiB of random bytes under `dir`. */
async function tree(dir: string, mib: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < mib; i++) await randomFile(join(dir, `blob${i}.bin`), 1);
}

/** Every install path the agent has; `key` names it for `npm run bench -- --memory-paths`. */
export const PATHS: (InstallPath & { key: string })[] = [
  { key: 'raw', name: 'raw image, local file', kind: 'raw', payload: async (d, mib) => (await randomFile(join(d, 'image.bin'), mib), ['--image', `rootfs=${join(d, 'image.bin')}`]) },
  { key: 'url', name: 'raw image, URL', kind: 'raw', url: true, payload: async (d, mib) => (await randomFile(join(d, 'image.bin'), mib), ['--image', `rootfs=${join(d, 'image.bin')}`]) },
  { key: 'gzip', name: 'gzip image, local file', kind: 'raw', payload: async (d, mib) => (await randomFile(join(d, 'image.bin'), mib), ['--image', `rootfs=${join(d, 'image.bin')}`, '--gzip']) },
  {
    key: 'archive',
    name: 'root file system archive, local file',
    kind: 'fs',
    payload: async (d, mib) => {
      await tree(join(d, 'rootfs', 'usr', 'lib'), mib);
      await mkdir(join(d, 'rootfs', 'etc'), { recursive: true });
      await writeFile(join(d, 'rootfs', 'etc', 'healthy'), 'bench\n');
      return ['--archive', `rootfs=${join(d, 'rootfs')}`];
    },
  },
  {
    key: 'module',
    name: 'module, local file',
    kind: 'fs',
    payload: async (d, mib) => (await tree(join(d, 'module'), mib), ['--module', `${MODULE}@2.0.0=${join(d, 'module')}:/opt/${MODULE}`]),
    slotA: async (d) => {
      const os = join(d, 'os');
      await tree(join(os, 'usr', 'lib'), 4);
      await mkdir(join(os, 'etc'), { recursive: true });
      await writeFile(join(os, 'etc', 'healthy'), 'factory\n');
      return os;
    },
  },
];

/** One install of `source` on a fresh device of `path`'s kind. */
async function installOn(srv: BenchServer, path: InstallPath, source: string, mib: number, token: string, dir: string, id: string, cli: string, os?: string): Promise<InstallRun> {
  const root = join(dir, id);
  const dev = await bootedDevice({
    root,
    id,
    kind: path.kind,
    slotSize: mib * 2 ** 20, // not `<< 20`: 4 GiB overflows 32 bits
    trustedKeys: [srv.pub],
    fullInstall: true,
    ...(os ? { beforeBoot: (d) => cp(os, d.dev.slots.A, { recursive: true }) } : {}),
  });
  try {
    return await measuredInstall(dev, source, { origin: srv.url, token }, dir, [], cli);
  } finally {
    await dev.stop();
    await rm(root, { recursive: true, force: true });
  }
}

/** Runs benchmark 2: each path at each of `sizes` MiB, `runs` installs each, with `cli` (the agent's entry). */
export async function benchMemory(srv: BenchServer, sizes: number[], runs: number, cli: string, paths = PATHS): Promise<BenchRow[]> {
  const token = await srv.enroll('bench-memory');
  const dir = join(srv.work, 'memory');
  const bare = await footprint(['-e', '0'], srv.work);
  const loaded = await footprint([cli, '--help'], srv.work);
  const rows: BenchRow[] = [
    { bench: 'memory', metric: 'reference: node -e 0 (peak RSS / RssAnon)', ours: bare.peakRssMiB, unit: 'MiB', note: `RssAnon ${bare.anonMiB.toFixed(1)} MiB at exit: the floor of any Node process` },
    { bench: 'memory', metric: 'reference: ota-agent --help (its code loaded, no work)', ours: loaded.peakRssMiB, unit: 'MiB', note: `RssAnon ${loaded.anonMiB.toFixed(1)} MiB at exit; ${cli.endsWith('.mjs') ? 'the bundle (launcher, its code and code cache; openpgp, got and execa in files loaded when needed)' : 'dist/agent/cli.js'}` },
  ];
  for (const [p, path] of paths.entries()) {
    const work = join(dir, `path-${p}`);
    await mkdir(work, { recursive: true });
    const os = path.slotA ? await path.slotA(work) : undefined;
    let smallest: number | undefined;
    for (const [k, mib] of sizes.entries()) {
      const content = join(work, `content-${mib}`);
      await mkdir(content, { recursive: true });
      const bundle = join(work, `bundle-${mib}.otab`);
      await srv.build(`2.${p}.${k}`, await path.payload(content, mib), bundle);
      await rm(content, { recursive: true, force: true });
      const source = path.url ? srv.bundleUrl((await srv.upload(bundle)).sha256) : bundle;
      const got: InstallRun[] = [];
      for (let i = 0; i < runs; i++) got.push(await installOn(srv, path, source, mib, token, work, `mem-${p}-${mib}-${i}`, cli, os));
      await rm(bundle, { force: true });
      const anon = median(got.map((r) => r.peakAnonMiB));
      smallest ??= anon;
      const flat = k === 0 || anon <= smallest + FLAT_MIB;
      rows.push({
        bench: 'memory',
        metric: `agent peak RssAnon during install, ${path.name}, ${mib} MiB`,
        ours: anon,
        unit: 'MiB',
        goal: `≤ ${LIMIT_MIB}${k === 0 ? '' : `, ≤ ${sizes[0]} MiB's + ${FLAT_MIB}`}`,
        met: anon <= LIMIT_MIB && flat,
        note: `median of ${runs} (${Math.min(...got.map((r) => r.peakAnonMiB)).toFixed(1)}–${Math.max(...got.map((r) => r.peakAnonMiB)).toFixed(1)}), max of ≥ ${Math.min(...got.map((r) => r.samples))} samples every 20 ms; VmHWM ${median(got.map((r) => r.peakRssMiB)).toFixed(0)} MiB; install ${median(got.map((r) => r.seconds)).toFixed(1)} s`,
      });
    }
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}
