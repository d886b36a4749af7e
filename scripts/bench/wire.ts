/**
 * Benchmark 5: bytes on the wire. One change (a new version of one module) shipped two ways:
 * the full root file system archive that contains it, and a module-only bundle. Each is
 * installed from the real server on a fresh fs device whose running slot holds the previous
 * system, through the loopback proxy (plan `pass`), which counts the response body bytes of
 * the bundle download. Goal: the module-only download within 2 % of the module payload's size.
 */
import { execa } from 'execa';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFaultProxy } from '../net/fault-proxy.js';
import { measuredInstall } from './agent-run.js';
import { bootedDevice } from './device.js';
import type { BenchServer } from './fixture.js';
import { cliPath, randomFile, type BenchRow } from './util.js';

const MODULE = 'linky2influx';
const TARGET = `/opt/modules/${MODULE}`;

/** Writes `mib` MiB of random files (1 MiB each) under `dir/sub`. */
async function blobs(dir: string, sub: string, mib: number, prefix: string): Promise<void> {
  await mkdir(join(dir, sub), { recursive: true });
  for (let i = 0; i < mib; i++) await randomFile(join(dir, sub, `${prefix}${i}.bin`), 1);
}

/** Size of the `payloads/<name>` entry of a bundle, from `ota-release inspect --json`. */
async function payloadSize(bundle: string, name: string): Promise<number> {
  const r = await execa('node', [cliPath('release'), 'inspect', bundle, '--json']);
  const entry = (JSON.parse(String(r.stdout)) as { entries: { name: string; size: number }[] }).entries.find((e) => e.name === `payloads/${name}`);
  if (!entry) throw new Error(`${bundle}: no payloads/${name}`);
  return entry.size;
}

/** Installs `sha256` on a fresh fs device running `os` in slot A, through a counting proxy; returns the bundle's body bytes sent. */
async function installCounted(srv: BenchServer, sha256: string, os: string, token: string, dir: string, id: string): Promise<number> {
  const proxy = await startFaultProxy(srv.url, () => ({ kind: 'pass' }));
  const root = join(dir, id);
  const dev = await bootedDevice({ root, id, kind: 'fs', trustedKeys: [srv.pub], beforeBoot: (d) => cp(os, d.dev.slots.A, { recursive: true }) });
  try {
    await measuredInstall(dev, `${proxy.url}/v1/bundles/${sha256}`, { origin: proxy.url, token }, dir);
    return proxy.bytesSent.get(`/v1/bundles/${sha256}`) ?? 0;
  } finally {
    await dev.stop();
    await proxy.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** Runs benchmark 5: an `osMib` MiB system whose `moduleMib` MiB module changes. */
export async function benchWire(srv: BenchServer, osMib: number, moduleMib: number): Promise<BenchRow[]> {
  const dir = join(srv.work, 'wire');
  const v1 = join(dir, 'rootfs-1');
  const v2 = join(dir, 'rootfs-2');
  const mod2 = join(dir, 'module-2');
  // The previous system: OS files, its health marker, and version 1 of the module.
  await blobs(v1, 'usr/lib/os', osMib, 'lib');
  await mkdir(join(v1, 'etc'), { recursive: true });
  await writeFile(join(v1, 'etc', 'healthy'), 'rootfs 1\n');
  await blobs(v1, TARGET.slice(1), moduleMib, 'v1-');
  // The change: version 2 of the module, alone and inside a full system.
  await blobs(mod2, 'bin', moduleMib, 'v2-');
  await cp(v1, v2, { recursive: true });
  await rm(join(v2, TARGET.slice(1)), { recursive: true });
  await cp(mod2, join(v2, TARGET.slice(1)), { recursive: true });

  const full = join(dir, 'full.otab');
  const modular = join(dir, 'module.otab');
  await srv.build('3.0.0', ['--archive', `rootfs=${v2}`], full);
  await srv.build('3.0.1', ['--module', `${MODULE}@2.0.0=${mod2}:${TARGET}`], modular);
  const payload = await payloadSize(modular, MODULE);
  const fullUp = await srv.upload(full);
  const modUp = await srv.upload(modular);
  const token = await srv.enroll('bench-wire');
  const fullBytes = await installCounted(srv, fullUp.sha256, v1, token, dir, 'wire-full');
  const modBytes = await installCounted(srv, modUp.sha256, v1, token, dir, 'wire-module');
  await rm(dir, { recursive: true, force: true });
  const overhead = modBytes / payload - 1;
  const MiB = 2 ** 20;
  return [
    {
      bench: 'wire',
      metric: `bundle bytes downloaded for a ${moduleMib} MiB module change on a ${osMib + moduleMib} MiB system`,
      ours: modBytes / MiB,
      baseline: fullBytes / MiB,
      unit: 'MiB',
      ratio: fullBytes / modBytes,
      goal: '≤ module payload + 2 %',
      met: overhead <= 0.02,
      note: `module-only: ${modBytes} B on the wire for a ${payload} B payload (+${(overhead * 100).toFixed(3)} %); full root fs archive: ${fullBytes} B (${fullUp.size} B bundle)`,
    },
  ];
}
