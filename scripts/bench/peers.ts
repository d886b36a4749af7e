/**
 * The peers on the block-device benchmark: RAUC 1.8 and the Mender client 3.4, as Debian
 * packages them, each installing the same random image from a local signed bundle into a loop
 * device over a fresh sparse file, the way otaab's agent does in scripts/bench/blockdev.ts.
 * Neither runs here as it would on a device (no systemd, no real bootloader, the host's `/` is
 * no slot), so each gets the least it needs, and nothing of the host's:
 *
 * - RAUC: `rauc install` is only a D-Bus client of `rauc service`. A private `dbus-daemon` with
 *   a permissive system-bus config serves both (DBUS_SYSTEM_BUS_ADDRESS); the booted slot is
 *   given with `--override-boot-slot=A` (the kernel command line names none); the bootloader is
 *   RAUC's `custom` backend, a shell script keeping its state in files, whose `set-primary`
 *   also marks the slot good as RAUC's GRUB backend would. Plain bundle (no device-mapper here),
 *   CMS-signed with a self-signed certificate that is also the keyring; squashfs uncompressed.
 * - Mender: it finds the running slot by the device mounted on `/`, so it runs under
 *   `unshare -m` chrooted into an ext4 file system on the loop device that is RootfsPartA, with
 *   /usr and /etc bound read-only, a /dev holding only the nodes it needs, and fake
 *   `fw_printenv`/`fw_setenv` (a key=value file) first on its PATH. Artifact signed with an
 *   RSA-3072 key (PKCS#1), uncompressed. It checks its frames against the slot before writing,
 *   so every run starts from a fresh, zeroed slot.
 *
 * A run's `seconds` is the installer's wall time plus a `sync` after it; the page cache is
 * dropped right before. Memory is the peak RssAnon of the process tree doing the work (for
 * RAUC the service, not the D-Bus client), sampled every 20 ms.
 */
import { execa, type ResultPromise } from 'execa';
import { chmod, link, copyFile, mkdir, rm, symlink, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { have, sha256Prefix, sparseFile, watchTreeAnon, withLoops } from './loopdev.js';
import { dropCaches } from './util.js';

/** One peer install. */
export interface PeerRun {
  /** Installer wall time plus the sync after it. */
  seconds: number;
  /** The installer alone. */
  installSeconds: number;
  /** The sync after it. */
  syncSeconds: number;
  /** Peak RssAnon of the working process tree, MiB. */
  peakAnonMiB: number;
}

/** A peer installer, set up once and run on a fresh slot file each time. */
export interface Peer {
  readonly name: string;
  /** Installs the image into a loop device over `slotFile` (made fresh) and checks the slot. */
  run(slotFile: string): Promise<PeerRun>;
  close(): Promise<void>;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

/** Whether each peer's Debian packages are installed. */
export async function peersAvailable(): Promise<{ rauc: boolean; mender: boolean }> {
  const [rauc, squash, dbus, mender, artifact] = await Promise.all([have('rauc'), have('mksquashfs'), have('dbus-daemon'), have('mender'), have('mender-artifact')]);
  return { rauc: rauc && squash && dbus, mender: mender && artifact };
}

async function checkSlot(name: string, slotFile: string, size: number, sha256: string): Promise<void> {
  const got = await sha256Prefix(slotFile, size);
  if (got !== sha256) throw new Error(`${name}: the slot reads ${got} after the install, the image is ${sha256}`);
}

async function hardLinkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(() => copyFile(from, to));
}

/** RAUC 1.8 with a private system bus and a custom bootloader backend. */
export class Rauc implements Peer {
  readonly name = 'RAUC';
  private constructor(
    private readonly w: string,
    private readonly size: number,
    private readonly sha256: string,
    private readonly busPid: number,
  ) {}

  /** Builds the certificate, the bundle of `image` and the private bus in `w`. */
  static async setup(w: string, image: string, size: number, sha256: string): Promise<Rauc> {
    await mkdir(join(w, 'content'), { recursive: true });
    await mkdir(join(w, 'mnt'), { recursive: true });
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(w, 'key.pem'), '-out', join(w, 'cert.pem'), '-days', '30', '-subj', '/O=otaab-bench/CN=otaab-bench signer']);
    await hardLinkOrCopy(image, join(w, 'content', 'rootfs.img'));
    await writeFile(join(w, 'content', 'manifest.raucm'), '[update]\ncompatible=otaab-bench\nversion=2.0\n[bundle]\nformat=plain\n[image.rootfs]\nfilename=rootfs.img\n');
    await execa('rauc', ['bundle', `--cert=${join(w, 'cert.pem')}`, `--key=${join(w, 'key.pem')}`, '--mksquashfs-args=-noI -noD -noF -noX', join(w, 'content'), join(w, 'update.raucb')]);
    await rm(join(w, 'content'), { recursive: true });
    await mkdir(join(w, 'bootenv'), { recursive: true });
    const boot = join(w, 'bootloader.sh');
    await writeFile(
      boot,
      `#!/bin/sh
E='${join(w, 'bootenv')}'
case "$1" in
  get-primary) cat "$E/primary" ;;
  set-primary) echo "$2" > "$E/primary"; echo good > "$E/state.$2" ;;
  get-state)   cat "$E/state.$2" ;;
  set-state)   echo "$3" > "$E/state.$2" ;;
  get-current) echo A ;;
  *) exit 1 ;;
esac
`,
    );
    await chmod(boot, 0o755);
    await sparseFile(join(w, 'slotA.img'), 1 << 20);
    const sock = join(w, 'bus.sock');
    await writeFile(
      join(w, 'bus.conf'),
      `<busconfig><type>system</type><listen>unix:path=${sock}</listen><auth>EXTERNAL</auth>
 <policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>\n`,
    );
    const r = await execa('dbus-daemon', [`--config-file=${join(w, 'bus.conf')}`, '--fork', '--print-pid']);
    return new Rauc(w, size, sha256, Number(String(r.stdout).trim()));
  }

  private get env(): Record<string, string> {
    return { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(this.w, 'bus.sock')}` };
  }

  async run(slotFile: string): Promise<PeerRun> {
    const w = this.w;
    await sparseFile(slotFile, this.size);
    const run = await withLoops([join(w, 'slotA.img'), slotFile], async ([a, b]) => {
      const conf = join(w, 'system.conf');
      await writeFile(
        conf,
        `[system]\ncompatible=otaab-bench\nbootloader=custom\nmountprefix=${join(w, 'mnt')}\ndata-directory=${join(w, 'data')}\nbundle-formats=plain\n\n` +
          `[handlers]\nbootloader-custom-backend=${join(w, 'bootloader.sh')}\n\n[keyring]\npath=${join(w, 'cert.pem')}\n\n` +
          `[slot.rootfs.0]\ndevice=${a}\ntype=raw\nbootname=A\n\n[slot.rootfs.1]\ndevice=${b}\ntype=raw\nbootname=B\n`,
      );
      await rm(join(w, 'data'), { recursive: true, force: true });
      await mkdir(join(w, 'data'));
      for (const [f, v] of [['primary', 'A'], ['state.A', 'good'], ['state.B', 'good']]) await writeFile(join(w, 'bootenv', f!), `${v}\n`);
      const service = execa('rauc', [`--conf=${conf}`, 'service', '--override-boot-slot=A'], { env: this.env, reject: false, stdin: 'ignore', all: true });
      try {
        await this.ready(conf, service);
        await dropCaches();
        const stop = watchTreeAnon(service.pid!);
        const t0 = now();
        const r = await execa('rauc', [`--conf=${conf}`, 'install', join(w, 'update.raucb')], { env: this.env, reject: false, all: true });
        const t1 = now();
        await execa('sync');
        const t2 = now();
        const mem = stop();
        if (r.exitCode !== 0) throw new Error(`rauc install exited ${r.exitCode}: ${String(r.all).slice(-2000)}`);
        const primary = (await readFile(join(w, 'bootenv', 'primary'), 'utf8')).trim();
        if (primary !== 'B') throw new Error(`rauc install: the primary slot is "${primary}" afterwards, not B`);
        return { seconds: t2 - t0, installSeconds: t1 - t0, syncSeconds: t2 - t1, peakAnonMiB: mem.maxMiB };
      } finally {
        service.kill('SIGTERM');
        await service;
        // RAUC unmounts its bundle itself; a leftover mount would keep a loop device busy.
        await execa('umount', ['-R', join(w, 'mnt', 'bundle')], { reject: false });
      }
    });
    await checkSlot(this.name, slotFile, this.size, this.sha256);
    return run;
  }

  /** Waits until the service answers on the bus. */
  private async ready(conf: string, service: ResultPromise): Promise<void> {
    for (let waited = 0; waited < 20_000; waited += 100) {
      if (service.exitCode !== null && service.exitCode !== undefined) break;
      const r = await execa('rauc', [`--conf=${conf}`, 'status'], { env: this.env, reject: false });
      if (r.exitCode === 0) return;
      await sleep(100);
    }
    service.kill('SIGTERM');
    const s = await service;
    throw new Error(`rauc service did not come up: ${String(s.all).slice(-2000)}`);
  }

  async close(): Promise<void> {
    try {
      process.kill(this.busPid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** What runs inside the private mount namespace: builds the chroot, then times mender and a sync. */
const MENDER_INNER = `set -e
W="$1"; LA="$2"; LB="$3"; R="$W/root"
mkdir -p "$R"
mount -t ext4 "$LA" "$R"
mount --bind /usr "$R/usr"; mount -o remount,bind,ro "$R/usr"
mount --bind /etc "$R/etc"; mount -o remount,bind,ro "$R/etc"
mount --bind "$W/etc-mender" "$R/etc/mender"
mount --bind "$W/work" "$R/work"
mount -t proc proc "$R/proc"
mount -t tmpfs tmpfs "$R/tmp"
mount -t tmpfs -o mode=755 tmpfs "$R/dev"
cp -a /dev/null /dev/zero /dev/random /dev/urandom "$LA" "$LB" "$R/dev/"
ln -s /proc/self/fd "$R/dev/fd"; ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(date +%s.%N)
rc=0
chroot "$R" /usr/bin/env -i PATH=/work/bin:/usr/bin:/usr/sbin mender --no-syslog -c /work/mender.conf -d /work/data install /work/update.mender || rc=$?
t1=$(date +%s.%N)
sync
t2=$(date +%s.%N)
echo "otaab-bench-times $t0 $t1 $t2 $rc"
`;

const FW_PRINTENV = `#!/bin/sh
E=/work/fwenv
if [ $# -eq 0 ]; then cat "$E"; exit 0; fi
rc=0
for n in "$@"; do
  case "$n" in -*) continue ;; esac
  l=$(grep "^$n=" "$E" || true)
  if [ -n "$l" ]; then echo "$l"; else echo "## Error: \\"$n\\" not defined" >&2; rc=1; fi
done
exit $rc
`;

const FW_SETENV = `#!/bin/sh
E=/work/fwenv
set_one() { grep -v "^$1=" "$E" > "$E.new" || true; [ -z "$2" ] || echo "$1=$2" >> "$E.new"; mv "$E.new" "$E"; }
if [ "$1" = "-s" ]; then
  [ -z "$2" ] || [ "$2" = - ] || exec < "$2"
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] || continue
    case "$line" in *=*) set_one "\${line%%=*}" "\${line#*=}" ;; *) set_one "\${line%% *}" "$(echo "$line" | cut -s -d' ' -f2-)" ;; esac
  done
else
  n="$1"; shift; set_one "$n" "$*"
fi
`;

/** The Mender client in standalone mode, chrooted onto its RootfsPartA. */
export class Mender implements Peer {
  readonly name = 'Mender';
  private constructor(
    private readonly w: string,
    private readonly size: number,
    private readonly sha256: string,
  ) {}

  /** Builds the key, the artifact of `image`, the chroot's file system and the fake env tools in `w`. */
  static async setup(w: string, image: string, size: number, sha256: string): Promise<Mender> {
    const work = join(w, 'work');
    await mkdir(join(work, 'bin'), { recursive: true });
    await mkdir(join(work, 'data'), { recursive: true });
    await mkdir(join(w, 'etc-mender'), { recursive: true });
    // mender-artifact 3.9 takes only PKCS#1 RSA keys.
    await execa('openssl', ['genrsa', '-traditional', '-out', join(w, 'private.key'), '3072']);
    await execa('openssl', ['pkey', '-in', join(w, 'private.key'), '-pubout', '-out', join(work, 'public.key')]);
    await execa('mender-artifact', ['write', 'rootfs-image', '-f', image, '-t', 'otaab-bench', '-n', 'bench-v2', '--compression', 'none', '-k', join(w, 'private.key'), '-o', join(work, 'update.mender')]);
    await writeFile(join(work, 'bin', 'fw_printenv'), FW_PRINTENV);
    await writeFile(join(work, 'bin', 'fw_setenv'), FW_SETENV);
    await chmod(join(work, 'bin', 'fw_printenv'), 0o755);
    await chmod(join(work, 'bin', 'fw_setenv'), 0o755);
    await writeFile(join(w, 'etc-mender', 'artifact_info'), 'artifact_name=bench-v1\n');
    await writeFile(join(w, 'inner.sh'), MENDER_INNER);
    // The running system's root file system, which Mender must find mounted on `/`.
    const tree = join(w, 'rootA');
    for (const d of ['usr', 'etc', 'proc', 'dev', 'tmp', 'work', 'var/lib']) await mkdir(join(tree, d), { recursive: true });
    for (const d of ['bin', 'sbin', 'lib', 'lib64']) await symlink(`usr/${d}`, join(tree, d));
    await sparseFile(join(w, 'slotA.ext4'), 64 << 20);
    await execa('mkfs.ext4', ['-q', '-F', '-d', tree, join(w, 'slotA.ext4')]);
    return new Mender(w, size, sha256);
  }

  async run(slotFile: string): Promise<PeerRun> {
    const w = this.w;
    const work = join(w, 'work');
    await sparseFile(slotFile, this.size);
    const run = await withLoops([join(w, 'slotA.ext4'), slotFile], async ([a, b]) => {
      const num = (dev: string): string => /(\d+)$/.exec(dev)![1]!;
      await writeFile(join(work, 'mender.conf'), `${JSON.stringify({ RootfsPartA: a, RootfsPartB: b, ArtifactVerifyKey: '/work/public.key', DBus: { Enabled: false } })}\n`);
      await writeFile(join(work, 'fwenv'), `mender_boot_part=${num(a!)}\nmender_boot_part_hex=${Number(num(a!)).toString(16)}\nupgrade_available=0\nbootcount=0\n`);
      await rm(join(work, 'data'), { recursive: true, force: true });
      await mkdir(join(work, 'data'));
      await writeFile(join(work, 'data', 'device_type'), 'device_type=otaab-bench\n');
      let pid: number | undefined;
      const child = execa('unshare', ['-m', '--propagation', 'private', 'sh', join(w, 'inner.sh'), w, a!, b!], { reject: false, all: true, stdin: 'ignore' });
      pid = child.pid;
      // The inner script drops the cache itself, right before mender starts.
      const stop = watchTreeAnon(() => pid);
      const r = await child;
      const mem = stop();
      const m = /otaab-bench-times (\S+) (\S+) (\S+) (\d+)/.exec(String(r.all));
      if (r.exitCode !== 0 || !m || m[4] !== '0') throw new Error(`mender install failed (exit ${r.exitCode}): ${String(r.all).slice(-3000)}`);
      const env = await readFile(join(work, 'fwenv'), 'utf8');
      if (!env.includes(`mender_boot_part=${num(b!)}\n`) || !env.includes('upgrade_available=1\n')) throw new Error(`mender install: the boot env is not switched to ${b}:\n${env}`);
      const [t0, t1, t2] = [Number(m[1]), Number(m[2]), Number(m[3])];
      pid = undefined;
      return { seconds: t2 - t0, installSeconds: t1 - t0, syncSeconds: t2 - t1, peakAnonMiB: mem.maxMiB };
    });
    await checkSlot(this.name, slotFile, this.size, this.sha256);
    return run;
  }

  async close(): Promise<void> {}
}
