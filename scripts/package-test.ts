#!/usr/bin/env node
/**
 * The package test (`npm run test:package`, after `npm run package`): installs the agent's
 * .deb into a fresh Debian 12 root made with debootstrap (minbase, plus grub-common the
 * package depends on) and, in that root with chroot:
 *
 *   - `dpkg -i` installs it (dependencies satisfied, maintainer scripts run; /var/lib/otaab 0700);
 *   - `ota-agent --help` and `ota-agent status --json` run from the bundle on the
 *     shipped Node runtime with the native SQLite module built for the architecture;
 *   - `ota-agent install` puts a signed bundle (the project's own bundle builder, a fresh key)
 *     into a simulated device's file slots, with its grubenv and cmdline; real GRUB (grub-emu,
 *     on the build machine: it plays the device's firmware) boots slot B, `ota-agent daemon`
 *     commits it, and `status --json` says so;
 *   - `dpkg --purge` removes it and its store;
 *   - the tarball of the same tree, unpacked under /opt/otaab, runs `status --json`.
 *
 * amd64 always; arm64 too when qemu-user runs aarch64 binaries here (binfmt_misc with
 * qemu-user-static: registered if it is not yet and this runs as root), else it says it skipped
 * it. The debootstrapped roots are cached as tarballs in .cache/pkg/ (minutes to make, seconds
 * to unpack). Needs root, debootstrap, dpkg and grub-emu. Exit 0 when everything passed.
 *
 *   node dist/scripts/package-test.js [--arch amd64,arm64] [--pkg dist/pkg]
 */
import { execa, execaSync } from 'execa';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { aptMirror } from './setup/apt-mirror.js';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBundle } from '../shared/bundle-writer.js';
import { generateSigningKey, readPrivateKey } from '../shared/signing.js';
import { boot, createDevice, readEnv } from './sim/simulator.js';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');
const CACHE = join(root, '.cache', 'pkg');
const SUITE = 'bookworm';
const CHROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

class TestFailure extends Error {
  override readonly name = 'TestFailure';
}

function check(ok: boolean, what: string, detail = ''): void {
  if (!ok) throw new TestFailure(`${what}${detail ? `\n${detail}` : ''}`);
}

const started = Date.now();
function log(msg: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
}

async function sh(cmd: string, args: string[], opts: { timeout?: number; cwd?: string } = {}): Promise<string> {
  const r = await execa(cmd, args, { reject: false, stdin: 'ignore', all: true, timeout: opts.timeout ?? 1_800_000, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  if (r.exitCode !== 0) throw new TestFailure(`${cmd} ${args.join(' ')} failed (${r.exitCode ?? r.message}):\n${String(r.all ?? '').split('\n').slice(-20).join('\n')}`);
  return String(r.stdout);
}

/** True when aarch64 binaries run here; registers qemu-user-static's handler if it can. */
async function aarch64Runs(): Promise<{ ok: boolean; why: string }> {
  const entry = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
  if (!existsSync('/proc/sys/fs/binfmt_misc/register')) await execa('mount', ['-t', 'binfmt_misc', 'binfmt_misc', '/proc/sys/fs/binfmt_misc'], { reject: false });
  if (!existsSync(entry)) await execa('update-binfmts', ['--enable', 'qemu-aarch64'], { reject: false });
  if (!existsSync(entry)) return { ok: false, why: 'no binfmt_misc handler for aarch64 (install qemu-user-static and binfmt-support)' };
  const text = readFileSync(entry, 'utf8');
  if (!text.startsWith('enabled')) return { ok: false, why: `${entry} is disabled` };
  // F: the interpreter is opened at registration, so it works inside a chroot without a copy.
  if (!/^flags:.*F/m.test(text)) return { ok: false, why: `${entry} lacks the F flag: a chroot cannot reach the interpreter` };
  return { ok: true, why: '' };
}

/** A tarball of a fresh Debian 12 minbase root for `arch` with grub-common, made once. */
async function baseRoot(arch: string): Promise<string> {
  const tarball = join(CACHE, `debian-${SUITE}-${arch}-minbase-grub.tar`);
  if (existsSync(tarball)) return tarball;
  await mkdir(CACHE, { recursive: true });
  const dir = await mkdtemp(join(CACHE, `debootstrap-${arch}-`));
  const mirror = aptMirror();
  try {
    log(`${arch}: debootstrap ${SUITE} from ${mirror} (once; cached as ${tarball})`);
    const common = ['--variant=minbase', '--include=grub-common', `--arch=${arch}`];
    if (arch === 'amd64') await sh('debootstrap', [...common, SUITE, dir, mirror]);
    else {
      await sh('debootstrap', [...common, '--foreign', SUITE, dir, mirror]);
      log(`${arch}: debootstrap --second-stage under qemu-user`);
      await sh('chroot', [dir, '/debootstrap/debootstrap', '--second-stage']);
    }
    await sh('chroot', [dir, 'apt-get', 'clean']);
    await sh('tar', ['--numeric-owner', '-cf', `${tarball}.tmp`, '-C', dir, '.']);
    await rename(`${tarball}.tmp`, tarball);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return tarball;
}

/** Runs a command in the chroot with a clean environment; never throws on its exit code. */
async function inRoot(rootDir: string, argv: string[], timeoutMs = 600_000) {
  const r = await execa('chroot', [rootDir, ...argv], { reject: false, stdin: 'ignore', env: { PATH: CHROOT_PATH, HOME: '/root', LANG: 'C.UTF-8' }, extendEnv: false, timeout: timeoutMs });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), all: `${String(r.stdout)}\n${String(r.stderr)}`.trim() };
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

interface SlotStatus {
  name: string;
  version: string | null;
  status: string;
  booted: boolean;
}
interface Status {
  booted: string | null;
  highestCommitted: string | null;
  transaction: { version: string; state: string } | null;
  slots: SlotStatus[];
}

/** /proc mounts in chroots still in use: unmounted if the test is interrupted. */
const liveMounts = new Set<string>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const m of liveMounts) execaSync('umount', [m], { reject: false });
    process.stderr.write(`package test: interrupted (${sig}); chroots are left in ${CACHE}\n`);
    process.exit(130);
  });
}

/** The whole scenario for one architecture's .deb. */
async function testArch(arch: string, deb: string): Promise<void> {
  const base = await baseRoot(arch);
  const rootDir = await mkdtemp(join(CACHE, `chroot-${arch}-`));
  let procMounted = false;
  try {
    await sh('tar', ['--numeric-owner', '-xf', base, '-C', rootDir]);
    // Node reads /proc (CPU count, its own executable); the device's cmdline is the simulator's.
    procMounted = (await execa('mount', ['-t', 'proc', 'proc', join(rootDir, 'proc')], { reject: false })).exitCode === 0;
    if (procMounted) liveMounts.add(join(rootDir, 'proc'));
    const inside = (p: string): string => `/${p.slice(rootDir.length + 1)}`;
    await copyFile(deb, join(rootDir, 'tmp', 'otaab-agent.deb'));

    log(`${arch}: dpkg -i ${deb.slice(root.length + 1)}`);
    const inst = await inRoot(rootDir, ['dpkg', '-i', '/tmp/otaab-agent.deb']);
    check(inst.code === 0, `${arch}: dpkg -i failed`, inst.all);
    const st = await stat(join(rootDir, 'var', 'lib', 'otaab'));
    check(st.isDirectory() && (st.mode & 0o777) === 0o700, `${arch}: /var/lib/otaab is not a 0700 directory`);
    const unit = await readFile(join(rootDir, 'lib', 'systemd', 'system', 'otaab-agent.service'), 'utf8');
    check(unit.includes('ExecStart=/usr/bin/ota-agent daemon'), `${arch}: the unit does not start /usr/bin/ota-agent`);
    const enabled = existsSync(join(rootDir, 'etc', 'systemd', 'system', 'multi-user.target.wants', 'otaab-agent.service'));
    check(!enabled, `${arch}: the package enabled the unit on its own`);

    const help = await inRoot(rootDir, ['ota-agent', '--help']);
    check(help.code === 0 && /^Usage: ota-agent <command>/.test(help.stdout) && /^ {2}install /m.test(help.stdout), `${arch}: ota-agent --help`, help.all);
    log(`${arch}: ota-agent --help ok`);

    // A device inside the root: two raw file slots, a grubenv, a cmdline; a key and a bundle.
    const dev = await createDevice(join(rootDir, 'srv', 'device'), { kind: 'raw', slotSize: 1 << 20, maxTries: 3 });
    const key = await generateSigningKey('package test <release@example.com>');
    await writeFile(join(rootDir, 'etc', 'otaab', 'keys', 'release.pub'), key.publicKey);
    const image = Buffer.alloc(256 * 1024);
    for (let i = 0; i < image.length; i++) image[i] = (i * 7 + 3) & 0xff;
    image.write(`otaab package test ${arch}\n`, 0);
    const work = await mkdtemp(join(CACHE, 'bundle-'));
    const bundlePath = join(rootDir, 'srv', 'update-1.0.0.otab');
    try {
      await writeFile(join(work, 'rootfs.img'), image);
      await buildBundle({
        product: 'gateway',
        version: '1.0.0',
        compatible: ['pkg-test'],
        payloads: [{ name: 'rootfs', type: 'image', path: join(work, 'rootfs.img') }],
        key: await readPrivateKey(Buffer.from(key.privateKey), 'release'),
        out: bundlePath,
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    await writeFile(join(rootDir, 'srv', 'health.sh'), '#!/bin/sh\ngrep -q "ota.slot=" /srv/device/cmdline && echo "booted $(sed -n \'s/.*ota\\.slot=\\([AB]\\).*/\\1/p\' /srv/device/cmdline)"\n');
    await chmod(join(rootDir, 'srv', 'health.sh'), 0o755);
    const config = {
      device: { id: `pkg-${arch}`, compatible: 'pkg-test' },
      slots: [
        { name: 'A', kind: 'raw', path: inside(dev.slots.A) },
        { name: 'B', kind: 'raw', path: inside(dev.slots.B) },
      ],
      boot: { grubenv: inside(dev.grubenvPath) },
      cmdlinePath: inside(dev.cmdlinePath),
      rebootCommand: ['sh', '-c', 'echo reboot >> /srv/reboots'],
      trustedKeys: ['/etc/otaab/keys/release.pub'],
      healthChecks: [{ name: 'app', command: ['/srv/health.sh'], timeoutSeconds: 120 }],
    };
    // The default config path: the commands below take no --config.
    await writeFile(join(rootDir, 'etc', 'otaab', 'agent.json'), JSON.stringify(config, null, 2));

    // Power on: GRUB (grub-emu on this machine, the device's firmware) boots slot A.
    check((await boot(dev)).slot === 'A', `${arch}: the first boot did not pick slot A`);
    const s0 = await inRoot(rootDir, ['ota-agent', 'status', '--json']);
    check(s0.code === 0, `${arch}: ota-agent status --json`, s0.all);
    const status0 = JSON.parse(s0.stdout) as Status;
    check(status0.booted === 'A' && status0.transaction === null, `${arch}: status before the install`, s0.stdout);
    log(`${arch}: ota-agent status --json ok (booted A)`);

    const install = await inRoot(rootDir, ['ota-agent', 'install', inside(bundlePath)]);
    check(install.code === 0 && /install 1\.0\.0: rebooting; the system reboots into slot B/.test(install.stdout), `${arch}: ota-agent install`, install.all);
    check((await readFile(join(rootDir, 'srv', 'reboots'), 'utf8')).trim() === 'reboot', `${arch}: the install did not ask for one reboot`);
    check((await readFile(dev.slots.B)).subarray(0, image.length).equals(image), `${arch}: slot B does not hold the image`);
    const env = await readEnv(dev.grubenvPath);
    check(env.ORDER === 'B A' && env.B_OK === '1', `${arch}: grubenv not armed for B`, JSON.stringify(env));
    log(`${arch}: ota-agent install into file slot B ok`);

    check((await boot(dev)).slot === 'B', `${arch}: GRUB did not boot slot B`);
    const daemon = await inRoot(rootDir, ['ota-agent', 'daemon']);
    check(daemon.code === 0, `${arch}: ota-agent daemon after the reboot`, daemon.all);
    const s1 = await inRoot(rootDir, ['ota-agent', 'status', '--json']);
    const status1 = JSON.parse(s1.stdout) as Status;
    const b = status1.slots.find((s) => s.name === 'B');
    check(status1.booted === 'B' && status1.highestCommitted === '1.0.0' && b?.status === 'committed' && status1.transaction === null, `${arch}: status after the reboot`, s1.stdout);
    log(`${arch}: booted B, health check passed, 1.0.0 committed`);

    const purge = await inRoot(rootDir, ['dpkg', '--purge', 'otaab-agent']);
    check(purge.code === 0, `${arch}: dpkg --purge`, purge.all);
    check(!existsSync(join(rootDir, 'usr', 'lib', 'otaab')) && !existsSync(join(rootDir, 'var', 'lib', 'otaab')), `${arch}: purge left /usr/lib/otaab or /var/lib/otaab`);
    check(existsSync(join(rootDir, 'etc', 'otaab', 'agent.json')), `${arch}: purge removed the administrator's agent.json`);
    log(`${arch}: dpkg --purge ok`);

    // The tarball: the same tree, relocatable, for distributions without dpkg.
    const tarball = deb.replace(/otaab-agent_([^_]+)_([a-z0-9]+)\.deb$/, 'otaab-agent-$1-linux-$2.tar.gz');
    check(existsSync(tarball), `${tarball} is missing`);
    await mkdir(join(rootDir, 'opt', 'otaab'), { recursive: true });
    await sh('tar', ['-xzf', tarball, '-C', join(rootDir, 'opt', 'otaab')]);
    await mkdir(join(rootDir, 'var', 'lib', 'otaab'), { mode: 0o700 });
    const fromTar = await inRoot(rootDir, ['/opt/otaab/usr/bin/ota-agent', 'status', '--json']);
    check(fromTar.code === 0 && (JSON.parse(fromTar.stdout) as Status).booted === 'B', `${arch}: ota-agent from the tarball under /opt/otaab`, fromTar.all);
    log(`${arch}: the tarball's ota-agent (unpacked under /opt/otaab) runs status --json`);
  } finally {
    if (procMounted) await execa('umount', [join(rootDir, 'proc')], { reject: false });
    liveMounts.delete(join(rootDir, 'proc'));
    const left = mountsUnder(rootDir);
    // Never delete through a mount point that is still there.
    if (left.length === 0) await rm(rootDir, { recursive: true, force: true });
    else process.stderr.write(`package test: ${rootDir} still has mounts (${left.join(', ')}); left in place\n`);
  }
}

const { values } = parseArgs({ options: { arch: { type: 'string' }, pkg: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('Usage: node dist/scripts/package-test.js [--arch amd64,arm64] [--pkg dist/pkg]\n\nInstalls the agent .deb into fresh Debian 12 roots (chroot) and runs it there. Root only.\n');
  process.exit(0);
}
const pkgDir = resolve(values.pkg ?? join(root, 'dist', 'pkg'));
const arches = (values.arch ?? 'amd64,arm64').split(',').filter(Boolean);
try {
  check(process.getuid?.() === 0, 'the package test needs root (debootstrap, chroot, mount)');
  for (const tool of ['debootstrap', 'dpkg', 'chroot', 'grub-emu']) {
    check((await execa('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`], { reject: false })).exitCode === 0, `${tool} not found: apt-get install debootstrap dpkg grub-emu`);
  }
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  const results: string[] = [];
  for (const arch of arches) {
    const deb = join(pkgDir, `otaab-agent_${version}_${arch}.deb`);
    check(existsSync(deb), `${deb} is missing: run 'npm run package' first`);
    if (arch !== 'amd64' && process.arch !== (arch === 'arm64' ? 'arm64' : arch)) {
      const q = await aarch64Runs();
      if (!q.ok) {
        log(`${arch}: SKIPPED: ${q.why}`);
        results.push(`${arch} skipped (${q.why})`);
        continue;
      }
    }
    const t0 = Date.now();
    await testArch(arch, deb);
    results.push(`${arch} ok (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  log(`package test passed: ${results.join(', ')}`);
} catch (err) {
  process.stderr.write(`package test FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
