#!/usr/bin/env node
/**
 * `npm run demo`: the release engineer's part of the story, narrated: make a release key, build
 * a signed bundle with an image and a module, inspect it, verify it, and watch a tampered copy
 * and a bundle signed by a stranger be refused. The fleet part (server, simulated devices,
 * rollbacks) is added by the end-to-end work; until then this demo says so at the end.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');
const cli = join(root, 'dist', 'release', 'cli.js');
const say = (text: string): void => void process.stdout.write(`\n== ${text}\n`);

async function release(args: string[], expectFail = false): Promise<void> {
  process.stdout.write(`$ ota-release ${args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}\n`);
  const r = await execa('node', [cli, ...args], { reject: false, cwd: work });
  if (r.stdout) process.stdout.write(`${r.stdout}\n`);
  if (r.stderr) process.stdout.write(`${r.stderr}\n`);
  if ((r.exitCode === 0) === expectFail) throw new Error(`ota-release ${args[0]} exited ${r.exitCode}, which the demo did not expect`);
}

const work = await mkdtemp(join(tmpdir(), 'otaab-demo-'));
try {
  say('Ops make an offline release key (Ed25519, readable by GnuPG).');
  await release(['keygen', '--out', 'release']);
  await release(['keygen', '--out', 'stranger']);

  say('They build release 1.0.0: a root file system image and the linky2influx module.');
  await writeFile(join(work, 'rootfs.img'), Buffer.alloc(4 * 1024 * 1024, 0x5a));
  await mkdir(join(work, 'linky2influx', 'bin'), { recursive: true });
  await writeFile(join(work, 'linky2influx', 'bin', 'linky2influx'), '#!/bin/sh\necho "reading the meter"\n');
  await chmod(join(work, 'linky2influx', 'bin', 'linky2influx'), 0o755);
  await release(['build', '--key', 'release.key', '--product', 'gateway', '--version', '1.0.0', '--compatible', 'x86-gw', '--compatible', 'rpi-cm4',
    '--image', 'rootfs=rootfs.img', '--gzip', '--module', 'linky2influx@1.4.2=linky2influx:/opt/modules/linky2influx', '--notes', 'demo release', '-o', 'gateway-1.0.0.otab']);

  say('Anyone can see what the bundle claims ...');
  await release(['inspect', 'gateway-1.0.0.otab']);
  say('... but only verification against the trusted key says it is authentic and whole.');
  await release(['verify', 'gateway-1.0.0.otab', '--keyring', 'release.pub']);

  say('One byte changed in the image payload: refused, and the error names why.');
  const bytes = await readFile(join(work, 'gateway-1.0.0.otab'));
  const at = bytes.indexOf('payloads/rootfs') + 512 + 100;
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  await writeFile(join(work, 'tampered.otab'), bytes);
  await release(['verify', 'tampered.otab', '--keyring', 'release.pub'], true);

  say('A bundle signed by a key the devices do not trust: refused before any payload is read.');
  await release(['build', '--key', 'stranger.key', '--product', 'gateway', '--version', '9.9.9', '--compatible', 'x86-gw', '--image', 'rootfs=rootfs.img', '-o', 'evil.otab']);
  await release(['verify', 'evil.otab', '--keyring', 'release.pub'], true);

  say('Not yet in this demo: the server, simulated devices updating over HTTP, a failing health check rolling back, and a technician rollback. They join when the end-to-end work lands.');
} finally {
  await rm(work, { recursive: true, force: true });
}
