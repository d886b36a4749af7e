#!/usr/bin/env node
/**
 * `npm run package`: the agent as Debian packages (amd64, arm64) and plain tarballs of the same
 * tree, in `dist/pkg/`:
 *
 *   otaab-agent_<version>_<arch>.deb
 *   otaab-agent-<version>-linux-<arch>.tar.gz   (paths relative to /, e.g. `tar -C / -xzf`)
 *
 * The tree: `/usr/bin/ota-agent` (a launcher), `/usr/lib/otaab/ota-agent.mjs` with `ota-agent.cjs` and its code cache (the
 * bundle of scripts/bundle.ts, better-sqlite3's JavaScript inlined) and the files of the
 * packages it loads only when needed (`ota-agent-openpgp.cjs`, `-got.cjs`, `-execa.cjs`), `/usr/lib/otaab/node_modules/`
 * holding only better-sqlite3's native module (compiled from source for the architecture),
 * `/usr/lib/otaab/node/` (the Node.js 20 runtime the agent runs on, from the npm registry's
 * `node-linux-<arch>` package: Debian 12 ships Node 18), the systemd unit, `/etc/otaab/keys/`
 * and the docs. The package creates `/var/lib/otaab` (0700); it enables and starts nothing.
 *
 * Nothing is downloaded but npm packages; the runtime and the native modules are cached in
 * `.cache/pkg/` (keyed by versions), so a second run only bundles and packs. arm64 is
 * cross-compiled with Debian's g++-aarch64-linux-gnu.
 *
 *   node dist/scripts/package.js [--arch amd64,arm64] [--out dist/pkg] [--xz]
 */
import { execa } from 'execa';
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT_ENV } from './agent-env.js';
import { AGENT_LAZY, bundle, lazyFile } from './bundle.js';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');

/** The Node.js runtime shipped in the package: the npm registry's node-linux-<arch> of this version. */
export const NODE_RUNTIME = '20.20.2';
/** Debian package name. */
export const PACKAGE = 'otaab-agent';
/** Where downloads and native builds are kept between runs. */
export const CACHE = join(root, '.cache', 'pkg');

/** A target architecture. */
export interface Arch {
  /** Debian's name. */
  deb: 'amd64' | 'arm64';
  /** Node's name (npm package suffix, node-gyp --arch). */
  node: 'x64' | 'arm64';
  /** Tool prefix of the cross toolchain, '' for the build machine's own. */
  cross: string;
  /** The Debian package that provides the toolchain. */
  toolchain: string;
}

/** The architectures `npm run package` builds. */
export const ARCHES: Record<string, Arch> = {
  amd64: { deb: 'amd64', node: 'x64', cross: '', toolchain: 'g++' },
  arm64: { deb: 'arm64', node: 'arm64', cross: 'aarch64-linux-gnu-', toolchain: 'g++-aarch64-linux-gnu' },
};

/** A step failed: the message says what to do. */
export class PackageError extends Error {
  override readonly name = 'PackageError';
}

function log(msg: string): void {
  process.stderr.write(`package: ${msg}\n`);
}

async function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const r = await execa(cmd, args, { reject: false, stdin: 'ignore', all: true, ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(opts.env ? { env: opts.env } : {}) });
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? '').split('\n').slice(-25).join('\n');
    throw new PackageError(`${cmd} ${args.join(' ')} failed (${r.failed && r.exitCode === undefined ? r.message : `exit ${r.exitCode}`}):\n${tail}`);
  }
  return String(r.stdout ?? '');
}

async function have(program: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${program}`], { reject: false })).exitCode === 0;
}

/** The Node.js runtime for `arch`, unpacked in the cache: `<dir>/bin/node`, `<dir>/include/node`. */
export async function runtime(arch: Arch): Promise<string> {
  const dir = join(CACHE, `node-v${NODE_RUNTIME}-linux-${arch.node}`);
  if (existsSync(join(dir, 'bin', 'node')) && existsSync(join(dir, 'include', 'node', 'node_api.h'))) return dir;
  await mkdir(CACHE, { recursive: true });
  const spec = `node-linux-${arch.node}@${NODE_RUNTIME}`;
  log(`fetching ${spec} from the npm registry`);
  const work = await mkdtemp(join(CACHE, 'fetch-'));
  try {
    // npm pack checks the registry's integrity hash of the tarball.
    const name = (await run('npm', ['pack', spec, '--pack-destination', work, '--silent'])).trim().split('\n').pop()!;
    await mkdir(join(work, 'x'));
    await run('tar', ['-xzf', join(work, name), '-C', join(work, 'x'), '--strip-components=1']);
    await rm(dir, { recursive: true, force: true });
    await rename(join(work, 'x'), dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return dir;
}

/** The node-gyp that npm itself uses (npm ships it); run with the build machine's node. */
function nodeGyp(): string {
  const candidates = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new PackageError("node-gyp not found: run through 'npm run package' (npm provides it) or install npm");
}

/**
 * better-sqlite3's native module for `arch`, compiled from the sources npm installed in
 * node_modules/better-sqlite3 against the shipped runtime's headers; cached by versions.
 */
export async function nativeModule(arch: Arch, runtimeDir: string): Promise<string> {
  const src = join(root, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(await readFile(join(src, 'package.json'), 'utf8')) as { version: string };
  const out = join(CACHE, `better-sqlite3-${version}-node-v${NODE_RUNTIME}-linux-${arch.node}.node`);
  if (existsSync(out)) return out;
  for (const tool of [`${arch.cross}g++`, `${arch.cross}gcc`, 'make', 'python3']) {
    if (!(await have(tool))) throw new PackageError(`${tool} not found: install the Debian package ${tool === 'make' ? 'make' : tool === 'python3' ? 'python3' : arch.toolchain} (apt-get install ${tool === 'make' ? 'make' : tool === 'python3' ? 'python3' : arch.toolchain})`);
  }
  if (!existsSync(join(src, 'deps', 'sqlite3', 'sqlite3.c'))) throw new PackageError(`${src} has no SQLite sources: run 'npm ci'`);
  log(`compiling better-sqlite3 ${version} for linux-${arch.node} (Node ${NODE_RUNTIME} headers; a few minutes)`);
  await mkdir(CACHE, { recursive: true });
  const work = await mkdtemp(join(CACHE, `build-${arch.deb}-`));
  try {
    for (const entry of ['binding.gyp', 'package.json', 'src', 'deps', 'lib']) await cp(join(src, entry), join(work, entry), { recursive: true });
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    if (arch.cross) Object.assign(env, { CC: `${arch.cross}gcc`, CXX: `${arch.cross}g++`, LINK: `${arch.cross}g++`, AR: `${arch.cross}ar` });
    await run(process.execPath, [nodeGyp(), 'rebuild', `--nodedir=${runtimeDir}`, `--arch=${arch.node}`, '--jobs=2', '--release'], { cwd: work, env });
    const built = join(work, 'build', 'Release', 'better_sqlite3.node');
    await run(`${arch.cross}strip`, ['--strip-unneeded', built]);
    await copyFile(built, `${out}.tmp`);
    await rename(`${out}.tmp`, out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}

/** `/usr/bin/ota-agent`. */
export const LAUNCHER = `#!/bin/sh
# ota-agent: runs the otaab agent's single-file bundle on the Node.js runtime shipped with it.
# The tree is relocatable: paths are taken from where this script really is.
# glibc's malloc: blocks of 64 KiB and more get a mapping of their own, returned when freed
# (the download's socket chunks; scripts/agent-env.ts in otaab's sources). Kept if already set.
${Object.entries(AGENT_ENV)
  .map(([k, v]) => `export ${k}="\${${k}:-${v}}"`)
  .join('\n')}
here=$(dirname "$(readlink -f "$0")")
lib=$(readlink -f "$here/../lib/otaab")
exec "\${OTAAB_NODE:-$lib/node/bin/node}" "$lib/ota-agent.mjs" "$@"
`;

/** The repository's unit with the package's paths: /usr/bin/ota-agent, docs in /usr/share/doc. */
export async function unitFile(): Promise<string> {
  const unit = await readFile(join(root, 'agent', 'otaab-agent.service'), 'utf8');
  const exec = /^ExecStart=.*$/m;
  const docs = /^Documentation=.*$/m;
  if (!exec.test(unit) || !docs.test(unit)) throw new PackageError('agent/otaab-agent.service has no ExecStart= or Documentation= line');
  return unit
    .replace(/^# otaab device agent\. Install: .*$/m, `# otaab device agent, installed by the ${PACKAGE} package (docs/AGENT.md, "Installing the agent").`)
    .replace(docs, `Documentation=file:///usr/share/doc/${PACKAGE}/AGENT.md`)
    .replace(exec, 'ExecStart=/usr/bin/ota-agent daemon')
    .replace(/^\[Service\]$/m, `# Without a config it has nothing to do: it stays inactive instead of failing at every boot.\nConditionPathExists=/etc/otaab/agent.json\n\n[Service]`);
}

/** A config to start from: every required key, and placeholders the docs explain. */
const EXAMPLE_CONFIG = {
  device: { id: 'CHANGE-ME', compatible: 'CHANGE-ME' },
  slots: [
    { name: 'A', kind: 'raw', path: '/dev/disk/by-partlabel/rootA' },
    { name: 'B', kind: 'raw', path: '/dev/disk/by-partlabel/rootB' },
  ],
  boot: { grubenv: '/boot/grub/grubenv' },
  trustedKeys: ['/etc/otaab/keys/release.pub'],
  healthChecks: [],
};

/** Lays the installed tree out under `dest`: what both the .deb and the tarball hold. */
export async function stageTree(dest: string, arch: Arch, bundleDir: string, version: string): Promise<void> {
  const lib = join(dest, 'usr', 'lib', 'otaab');
  const rt = await runtime(arch);
  const native = await nativeModule(arch, rt);
  await mkdir(join(lib, 'node', 'bin'), { recursive: true });
  await copyFile(join(rt, 'bin', 'node'), join(lib, 'node', 'bin', 'node'));
  await chmod(join(lib, 'node', 'bin', 'node'), 0o755);
  await copyFile(join(rt, 'LICENSE'), join(lib, 'node', 'LICENSE'));
  // The launcher, the agent's code and its V8 code cache (made by this Node version; another
  // runtime ignores it), and the packages the code loads only when needed.
  for (const f of ['ota-agent.mjs', 'ota-agent.cjs', 'ota-agent.cjs.cache', ...AGENT_LAZY.map((n) => lazyFile(n))]) await copyFile(join(bundleDir, f), join(lib, f));
  // The only file resolved at run time: better-sqlite3's native module, whose path the store
  // gives better-sqlite3 (agent/store/db.ts); its JavaScript is in the bundle.
  const nm = join(root, 'node_modules');
  const bs = join(lib, 'node_modules', 'better-sqlite3');
  await mkdir(join(bs, 'build', 'Release'), { recursive: true });
  for (const f of ['package.json', 'LICENSE']) await copyFile(join(nm, 'better-sqlite3', f), join(bs, f));
  await copyFile(native, join(bs, 'build', 'Release', 'better_sqlite3.node'));
  await writeFile(join(lib, 'VERSION'), `${PACKAGE} ${version} linux-${arch.deb} node ${NODE_RUNTIME}\n`);
  await mkdir(join(dest, 'usr', 'bin'), { recursive: true });
  await writeFile(join(dest, 'usr', 'bin', 'ota-agent'), LAUNCHER, { mode: 0o755 });
  await mkdir(join(dest, 'lib', 'systemd', 'system'), { recursive: true });
  await writeFile(join(dest, 'lib', 'systemd', 'system', 'otaab-agent.service'), await unitFile());
  await mkdir(join(dest, 'etc', 'otaab', 'keys'), { recursive: true });
  const doc = join(dest, 'usr', 'share', 'doc', PACKAGE);
  await mkdir(join(doc, 'examples'), { recursive: true });
  for (const f of ['AGENT.md', 'ERRORS.md']) await copyFile(join(root, 'docs', f), join(doc, f));
  await writeFile(join(doc, 'examples', 'agent.json'), `${JSON.stringify(EXAMPLE_CONFIG, null, 2)}\n`);
  await writeFile(
    join(doc, 'copyright'),
    `otaab agent ${version}: Apache-2.0.\nBundled: better-sqlite3 (MIT, with SQLite: public domain), and the npm packages inlined in\n/usr/lib/otaab/ota-agent.cjs and ota-agent-*.cjs (licences at the end of each).\nNode.js ${NODE_RUNTIME}: see /usr/lib/otaab/node/LICENSE.\n`,
  );
}

async function dirSizeKiB(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return Math.ceil(total / 1024);
}

const POSTINST = `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  # The agent's store (dataDir): root only, as the unit's StateDirectoryMode says.
  install -d -m 0700 -o root -g root /var/lib/otaab
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    # An upgrade restarts a running agent; SIGTERM is a safe stop at every step. Nothing is
    # enabled or started on a first install: write /etc/otaab/agent.json, then
    # 'systemctl enable --now otaab-agent'.
    if [ -n "$2" ]; then systemctl try-restart otaab-agent.service >/dev/null 2>&1 || true; fi
  fi
fi
exit 0
`;
const PRERM = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop otaab-agent.service >/dev/null 2>&1 || true
fi
exit 0
`;
const POSTRM = `#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
if [ "$1" = purge ]; then
  # The store (transaction history, enrollment). /etc/otaab/agent.json and keys are the
  # administrator's files: the package never shipped them and leaves them.
  rm -rf /var/lib/otaab
  if [ -x /usr/bin/deb-systemd-helper ]; then deb-systemd-helper purge otaab-agent.service >/dev/null || true; fi
fi
exit 0
`;

/** Builds the .deb and the tarball for one architecture into `outDir`; returns their paths. */
export async function packageArch(arch: Arch, outDir: string, bundleDir: string, version: string, compress: 'gzip' | 'xz' = 'gzip'): Promise<string[]> {
  const work = await mkdtemp(join(CACHE, `stage-${arch.deb}-`));
  try {
    const tree = join(work, 'tree');
    await stageTree(tree, arch, bundleDir, version);
    const tarball = join(outDir, `${PACKAGE}-${version}-linux-${arch.deb}.tar.gz`);
    await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-czf', `${tarball}.tmp`, '-C', tree, 'usr', 'lib', 'etc']);
    await rename(`${tarball}.tmp`, tarball);
    const debian = join(tree, 'DEBIAN');
    await mkdir(debian);
    const control = [
      `Package: ${PACKAGE}`,
      `Version: ${version}`,
      `Architecture: ${arch.deb}`,
      'Maintainer: otaab <otaab@example.com>',
      `Installed-Size: ${await dirSizeKiB(tree)}`,
      // The native module built by Debian 12's GCC needs glibc 2.34 and GLIBCXX_3.4.29 (GCC 11),
      // the runtime less; grub-common gives grub-editenv, the only program touching grubenv.
      'Depends: libc6 (>= 2.34), libstdc++6 (>= 11), libgcc-s1, grub-common',
      'Section: admin',
      'Priority: optional',
      'Homepage: https://example.com/otaab',
      'Description: otaab A/B over-the-air update agent',
      ' ota-agent installs signed bundles into the inactive A/B slot, verifies the new',
      ' slot after the reboot and commits it or rolls back (GRUB grubenv). It brings its',
      ` own Node.js ${NODE_RUNTIME} runtime in /usr/lib/otaab/node. Write /etc/otaab/agent.json`,
      ' (an example is in /usr/share/doc/otaab-agent/examples), then enable otaab-agent.service.',
      '',
    ].join('\n');
    await writeFile(join(debian, 'control'), control);
    for (const [name, text] of [
      ['postinst', POSTINST],
      ['prerm', PRERM],
      ['postrm', POSTRM],
    ] as const) await writeFile(join(debian, name), text, { mode: 0o755 });
    const deb = join(outDir, `${PACKAGE}_${version}_${arch.deb}.deb`);
    // gzip by default: xz saves a third of the size but costs a minute of CPU per package.
    await run('dpkg-deb', ['--root-owner-group', `-Z${compress}`, '-z6', '--build', tree, `${deb}.tmp`]);
    await rename(`${deb}.tmp`, deb);
    return [deb, tarball];
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `npm run package`: every requested architecture. */
export async function packageAll(arches: Arch[], outDir: string, compress: 'gzip' | 'xz' = 'gzip'): Promise<string[]> {
  if (!(await have('dpkg-deb'))) throw new PackageError('dpkg-deb not found: install the Debian package dpkg');
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  await mkdir(outDir, { recursive: true });
  await mkdir(CACHE, { recursive: true });
  const bundleDir = await mkdtemp(join(CACHE, 'bundle-'));
  try {
    await bundle(bundleDir, { minify: true });
    const out: string[] = [];
    for (const arch of arches) {
      log(`${arch.deb}: staging`);
      out.push(...(await packageArch(arch, outDir, bundleDir, version, compress)));
    }
    return out;
  } finally {
    await rm(bundleDir, { recursive: true, force: true });
  }
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === new URL(import.meta.url).pathname;
if (invokedDirectly) {
  const { values } = parseArgs({ options: { arch: { type: 'string' }, out: { type: 'string' }, xz: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('Usage: node dist/scripts/package.js [--arch amd64,arm64] [--out dist/pkg] [--xz]\n\nWrites otaab-agent_<version>_<arch>.deb and otaab-agent-<version>-linux-<arch>.tar.gz.\n--xz compresses the .deb with xz (a third smaller, a minute of CPU more per package).\n');
    process.exit(0);
  }
  const names = (values.arch ?? 'amd64,arm64').split(',').filter(Boolean);
  const unknown = names.filter((n) => !ARCHES[n]);
  if (unknown.length > 0) {
    process.stderr.write(`package: unknown architecture ${unknown.join(', ')}: use ${Object.keys(ARCHES).join(', ')}\n`);
    process.exit(2);
  }
  try {
    const files = await packageAll(
      names.map((n) => ARCHES[n]!),
      resolve(values.out ?? join(root, 'dist', 'pkg')),
      values.xz ? 'xz' : 'gzip',
    );
    for (const f of files) process.stdout.write(`${f} (${((await stat(f)).size / 1048576).toFixed(1)} MiB)\n`);
  } catch (err) {
    process.stderr.write(`package: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
