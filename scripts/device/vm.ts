/**
 * One qemu machine of the device test: its own copy-on-write overlay of the factory disk (on a
 * virtio disk with `cache=none`: what the guest did not flush is lost with the process, as on a
 * disk with a volatile write cache), an i6300esb watchdog, user networking (the guest reaches the
 * host's loopback at 10.0.2.2). The first serial port is the console (GRUB and the kernel),
 * appended to console.log across power cycles; the second carries the agent's durable-write
 * trace (OTA_DURABLE_TRACE=/dev/ttyS1) to the host line by line, so the host can cut the power
 * (SIGKILL of qemu) right after a chosen write.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { DeviceImage } from './image.js';
import { sh } from './util.js';

const MiB = 1 << 20;
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
  /** Power-ons so far. */
  powerOns = 0;

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
    this.powerOns++;
    this.started = Date.now();
    const pidfile = join(this.dir, 'qemu.pid');
    const args = [
      '-s', 'KILL', String(limitSeconds), 'qemu-system-x86_64', '-accel', 'tcg', '-m', '1024', '-smp', '1',
      '-display', 'none', '-monitor', 'none', '-no-user-config', '-nodefaults', '-pidfile', pidfile,
      '-drive', `file=${this.disk},format=qcow2,if=virtio,cache=none`,
      '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0',
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
    const pid = Number((await readFile(join(this.dir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
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
