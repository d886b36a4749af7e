/**
 * One qemu machine of the device test: its own copy-on-write overlay of the factory disk (on a
 * virtio disk with `cache=none`: what the guest did not flush is lost with the process, as on a
 * disk with a volatile write cache), an i6300esb watchdog, user networking. The first serial
 * port is the console (GRUB and the kernel),
 * appended to console.log across power cycles; the second carries the agent's durable-write
 * trace (OTA_DURABLE_TRACE=/dev/ttyS1) to the host line by line, so the host can cut the power
 * (SIGKILL of qemu) right after a chosen write.
 *
 * The guest reaches its update server at GUEST_SERVER, which qemu forwards (guestfwd, one
 * `socat` per connection) to the machine's own server on the host's loopback: a machine copied
 * at a power cut (`copyOf`) keeps the server address its disk was provisioned with, and talks
 * to a copy of the server's data made at the same moment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { DeviceImage } from './image.js';
import { sh } from './util.js';

const MiB = 1 << 20;
/** The update server as every machine sees it (device.env's SERVER_URL, the server's public URL). */
export const GUEST_SERVER = 'http://10.0.2.100:8080';
const guest = new URL(GUEST_SERVER);
const mtoolsEnv = { MTOOLS_SKIP_CHECK: '1' };

/** One line of the agent's durable-write trace, numbered across the machine's whole run. */
export interface TraceLine {
  /** 1-based, across every agent process and boot of this machine. */
  n: number;
  kind: string;
  what: string;
  /** ms since the machine was powered on. */
  at: number;
}

/** What the factory writes to the boot partition for this device. */
export interface Provision {
  DEVICE_ID: string;
  SERVER_URL: string;
  ENROLL_TOKEN: string;
  CHANNEL: string;
  POLL_SECONDS: string;
  /** The version of the factory image in both slots (the agent's device.factoryVersion). */
  FACTORY_VERSION: string;
}

/** A qemu machine on its own disk. */
export class Vm {
  readonly trace: TraceLine[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private listeners: ((l: TraceLine) => void)[] = [];
  private started = 0;
  private pid = 0;
  /** Power-ons so far. */
  powerOns = 0;
  /** The host port of this machine's update server (GUEST_SERVER is forwarded to it). */
  serverPort = 0;

  private constructor(
    readonly dir: string,
    readonly image: DeviceImage,
  ) {}

  /** The overlay disk. */
  get disk(): string {
    return join(this.dir, 'disk.qcow2');
  }

  /** The console log (every power-on appends). */
  get consolePath(): string {
    return join(this.dir, 'console.log');
  }

  /** A new machine: an overlay of the factory disk with `provision` on its boot partition. */
  static async create(dir: string, image: DeviceImage, provision: Provision): Promise<Vm> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const vm = new Vm(dir, image);
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image.disk, vm.disk]);
    // The factory step: device.env into the FAT boot partition (a copy, edited with mtools, written back).
    const boot = join(dir, 'boot.img');
    await vm.readPart(image.offsets.boot, 16 * MiB, boot);
    const env = join(dir, 'device.env');
    await writeFile(env, Object.entries(provision).map(([k, v]) => `${k}='${v}'\n`).join(''));
    await execa('mcopy', ['-o', '-i', boot, env, '::/device.env'], { env: mtoolsEnv, stdin: 'ignore' });
    await sh('qemu-io', ['-f', 'qcow2', '-c', `write -q -s ${boot} ${image.offsets.boot} ${16 * MiB}`, vm.disk]);
    await rm(boot);
    return vm;
  }

  /**
   * A second machine whose disk, console log and trace are this one's now: what a power cut at
   * this moment leaves. The caller stops this machine first (`pause`): the copy is then what
   * qemu has written to its overlay so far, no more (what it still holds in memory is lost, as
   * with SIGKILL), and the guest writes nothing while it is taken.
   */
  async copyOf(dir: string): Promise<Vm> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const vm = new Vm(dir, this.image);
    await sh('cp', ['--sparse=always', this.disk, vm.disk]);
    if (existsSync(this.consolePath)) await copyFile(this.consolePath, vm.consolePath);
    vm.trace.push(...this.trace);
    vm.powerOns = this.powerOns;
    return vm;
  }

  /** Stops the running machine where it is (SIGSTOP of qemu: nothing is flushed, nothing runs). */
  async pause(): Promise<void> {
    await this.signal('SIGSTOP');
  }

  /** Lets a paused machine run on. */
  async resume(): Promise<void> {
    await this.signal('SIGCONT');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const pid = await this.qemuPid();
    if (pid > 0 && this.child) process.kill(pid, sig);
  }

  /** The qemu process of this power-on (from its pid file; not `timeout`'s), 0 before it wrote it. */
  private async qemuPid(): Promise<number> {
    if (!this.pid) this.pid = Number((await readFile(join(this.dir, 'qemu.pid'), 'utf8').catch(() => '')).trim()) || 0;
    return this.pid;
  }

  /** Copies `size` bytes at `offset` of the disk (as the guest sees it) to the raw file `out`. */
  // qemu-img dd (7.2) counts `count` from the start of the disk, skipped blocks included.
  async readPart(offset: number, size: number, out: string): Promise<void> {
    await rm(out, { force: true });
    const disk = existsSync(this.disk) ? this.disk : this.image.disk;
    await sh('qemu-img', ['dd', '-f', existsSync(this.disk) ? 'qcow2' : 'raw', '-O', 'raw', `bs=${MiB}`, `skip=${offset / MiB}`, `count=${(offset + size) / MiB}`, `if=${disk}`, `of=${out}`]);
  }

  /** The grubenv on the disk now (the machine must be off). */
  async grubenv(): Promise<Record<string, string>> {
    const boot = join(this.dir, 'boot-read.img');
    await this.readPart(this.image.offsets.boot, 16 * MiB, boot);
    const r = await execa('mtype', ['-i', boot, '::/grub/grubenv'], { env: mtoolsEnv, stdin: 'ignore', reject: false });
    await rm(boot, { force: true });
    const env: Record<string, string> = {};
    for (const line of String(r.stdout).split('\n')) {
      const m = /^([A-Za-z_]\w*)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
    return env;
  }

  /** Calls `fn` with every trace line as it arrives. */
  onTrace(fn: (l: TraceLine) => void): void {
    this.listeners.push(fn);
  }

  /** Powers the machine on; it runs until killed, or `limitSeconds` (then `timeout` kills it). */
  start(limitSeconds: number): void {
    if (this.child) throw new Error('the machine is already on');
    if (!this.serverPort) throw new Error('the machine has no update server (serverPort)');
    this.powerOns++;
    this.started = Date.now();
    this.pid = 0;
    const pidfile = join(this.dir, 'qemu.pid');
    // The last power-on's pid is not this one's (and may be another process's by now).
    rmSync(pidfile, { force: true });
    const args = [
      '-s', 'KILL', String(limitSeconds), 'qemu-system-x86_64', '-accel', 'tcg', '-m', '1024', '-smp', '1',
      '-display', 'none', '-monitor', 'none', '-no-user-config', '-nodefaults', '-pidfile', pidfile,
      '-drive', `file=${this.disk},format=qcow2,if=virtio,cache=none`,
      // One socat per guest connection to GUEST_SERVER: to this machine's server.
      '-netdev', `user,id=n0,guestfwd=tcp:${guest.hostname}:${guest.port}-cmd:socat - TCP:127.0.0.1:${this.serverPort}`, '-device', 'virtio-net-pci,netdev=n0',
      '-device', 'i6300esb', '-action', 'watchdog=reset',
      '-chardev', `file,id=con,path=${this.consolePath},append=on`, '-serial', 'chardev:con',
      '-chardev', 'stdio,id=trace,signal=off', '-serial', 'chardev:trace',
    ];
    const child = spawn('timeout', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let buf = '';
    child.stdout!.setEncoding('latin1');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).replace(/\r/g, '');
        buf = buf.slice(i + 1);
        const m = /^\d+\t([\w-]+)\t(.*)$/.exec(line);
        if (!m) continue;
        const l: TraceLine = { n: this.trace.length + 1, kind: m[1]!, what: m[2]!, at: Date.now() - this.started };
        this.trace.push(l);
        for (const fn of this.listeners) fn(l);
      }
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        if (code !== 0 && signal === null && err.trim()) void writeFile(join(this.dir, 'qemu.err'), err);
        this.child = undefined;
        resolve(code);
      }),
    );
  }

  /** Whether it is on. */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** Power loss: SIGKILL of qemu itself (not of `timeout`), nothing flushed. */
  async cut(): Promise<void> {
    const pid = await this.qemuPid();
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await this.exited;
  }

  /** Waits until qemu has ended (killed by `timeout` or by `cut`). */
  async waitOff(): Promise<void> {
    await this.exited;
  }

  /** The console log so far. */
  async console(): Promise<string> {
    // eslint-disable-next-line no-control-regex -- the console is full of ANSI escapes
    return (await readFile(this.consolePath, 'latin1').catch(() => '')).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  }

  /** The slots GRUB booted, in order (its `ota: slot X, attempt N of M` lines). */
  async boots(): Promise<string[]> {
    return [...(await this.console()).matchAll(/ota: slot ([AB]), attempt (\d)/g)].map((m) => `${m[1]}${m[2]}`);
  }
}
