#!/usr/bin/env node
/**
 * Checks that `ota-release build` streams: builds a bundle from a large random image (1 GiB by
 * default), reports the builder's peak RSS, and re-reads the output to check its sha256 and
 * every payload hash. Exits 1 if the peak reaches the limit or a hash differs.
 *
 *   node dist/scripts/check-build-memory.js [--size-mib 1024] [--limit-mib 100] [--gzip] [--dir DIR]
 */
import { execa } from 'execa';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');
const { values } = parseArgs({
  options: { 'size-mib': { type: 'string', default: '1024' }, 'limit-mib': { type: 'string', default: '100' }, gzip: { type: 'boolean' }, dir: { type: 'string' }, help: { type: 'boolean' } },
});
if (values.help) {
  process.stdout.write('Usage: node dist/scripts/check-build-memory.js [--size-mib 1024] [--limit-mib 100] [--gzip] [--dir DIR]\n');
  process.exit(0);
}
const sizeMiB = Number(values['size-mib']);
const limitMiB = Number(values['limit-mib']);
const work = await mkdtemp(join(values.dir ?? tmpdir(), 'otaab-mem-'));
const cli = join(root, 'dist', 'release', 'cli.js');

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

try {
  const image = join(work, 'rootfs.img');
  const fh = await open(image, 'w');
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < sizeMiB; i++) await fh.write(randomFillSync(block));
  await fh.close();
  await execa('node', [cli, 'keygen', '--out', join(work, 'k')]);

  const probe = join(work, 'rss.json');
  const out = join(work, 'big.otab');
  const started = Date.now();
  const build = await execa(
    'node',
    ['--import', join(root, 'dist', 'scripts', 'rss-probe.js'), cli, 'build', '--key', join(work, 'k.key'), '--product', 'gateway', '--version', '1.0.0', '--compatible', 'x86-gw', '--image', `rootfs=${image}`, ...(values.gzip ? ['--gzip'] : []), '-o', out],
    { env: { OTA_RSS_PROBE_OUT: probe } },
  );
  const seconds = (Date.now() - started) / 1000;
  const rss = JSON.parse(await readFile(probe, 'utf8')) as { maxRssKiB: number };
  const peakMiB = rss.maxRssKiB / 1024;
  const printed = /sha256 ([0-9a-f]{64})/.exec(build.stdout)?.[1];
  const reread = await sha256(out);
  const verify = await execa('node', [cli, 'verify', out, '--keyring', join(work, 'k.pub')], { reject: false });
  const ok = peakMiB < limitMiB && printed === reread && verify.exitCode === 0;
  process.stdout.write(
    [
      `input          ${sizeMiB} MiB random image${values.gzip ? ' (gzip)' : ''}`,
      `build time     ${seconds.toFixed(1)} s`,
      `peak RSS       ${peakMiB.toFixed(1)} MiB (limit ${limitMiB} MiB)`,
      `sha256 printed ${printed}`,
      `sha256 re-read ${reread} ${printed === reread ? 'match' : 'MISMATCH'}`,
      `verify         ${verify.exitCode === 0 ? 'every payload hash matches the signed manifest' : verify.stderr}`,
      ok ? 'PASS' : 'FAIL',
    ].join('\n') + '\n',
  );
  process.exitCode = ok ? 0 : 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
