/**
 * A simulated field device for the demo, the end-to-end tests and the reliability suite: the
 * simulator's slots and real GRUB (scripts/sim), an agent config, and a supervisor that plays
 * power and systemd. It boots the device through GRUB, starts `ota-agent daemon`, and when the
 * agent runs its reboot command the "power" goes: the daemon is stopped, the simulator boots
 * again, and the daemon starts again on whatever slot GRUB chose. A daemon that exits with a
 * failure is restarted, as `Restart=on-failure` would.
 */
import { execa, type ResultPromise } from 'execa';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootUntilUp, createDevice, type SimDevice } from '../sim/simulator.js';

const HERE = dirname(new URL(import.meta.url).pathname);
// The repository root, whether this runs compiled (dist/scripts/fleet) or from source (the tests).
const ROOT = resolve(HERE, ...(basename(resolve(HERE, '..', '..')) === 'dist' ? ['..', '..', '..'] : ['..', '..']));
/** The compiled agent CLI. */
export const AGENT_CLI = join(ROOT, 'dist', 'agent', 'cli.js');

/** What makes one device. */
export interface FleetDeviceOptions {
  /** Directory to create the device in (must not exist yet or be empty). */
  root: string;
  id: string;
  compatible: string;
  kind?: 'raw' | 'fs';
  slotSize?: number;
  maxTries?: number;
  /** Release public keys the agent trusts. */
  trustedKeys: string[];
  /** Agent config keys merged over the defaults (e.g. a `server` section). */
  config?: Record<string, unknown>;
  /** Environment for every agent process (e.g. OTA_CRASH_AFTER_WRITE). */
  env?: Record<string, string>;
  /** `grub` (default, grub-emu) or `uboot` (real U-Boot under qemu-system-aarch64, the agent's U-Boot backend). */
  bootloader?: 'grub' | 'uboot';
}

/** One line the supervisor or the agent said. */
export type LogLine = { device: string; source: 'power' | 'agent'; text: string };

/** A device with its supervisor. */
export class FleetDevice {
  private child: ResultPromise | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private listeners: ((l: LogLine) => void)[] = [];
  /** Boots done so far (each a GRUB run). */
  boots = 0;
  /** Daemon processes started so far. */
  daemons = 0;

  private constructor(
    readonly id: string,
    readonly dev: SimDevice,
    readonly configPath: string,
    readonly rebootLog: string,
    readonly config: Record<string, unknown>,
    private env: Record<string, string>,
  ) {}

  /** Lays out the device: simulator slots (a healthy factory system on A), health check, agent config. */
  static async create(opts: FleetDeviceOptions): Promise<FleetDevice> {
    await mkdir(opts.root, { recursive: true });
    const dev = await createDevice(join(opts.root, 'device'), { kind: opts.kind ?? 'fs', slotSize: opts.slotSize ?? 4 << 20, maxTries: opts.maxTries ?? 3, bootloader: opts.bootloader ?? 'grub' });
    if (dev.kind === 'fs') {
      await mkdir(join(dev.slots.A, 'etc'), { recursive: true });
      await writeFile(join(dev.slots.A, 'etc', 'healthy'), 'factory\n');
      await writeFile(join(dev.slots.A, 'etc', 'os-release'), 'VERSION=factory\n');
    } else {
      const head = Buffer.from('HEALTHY factory\n');
      const fh = await import('node:fs/promises').then((m) => m.open(dev.slots.A, 'r+'));
      await fh.write(head, 0, head.length, 0);
      await fh.close();
    }
    const health = join(opts.root, 'health.sh');
    // Healthy when the booted slot's release says so: what a release ships decides its fate.
    await writeFile(
      health,
      `#!/bin/sh
slot=$(sed -n 's/.*ota\\.slot=\\([AB]\\).*/\\1/p' '${dev.cmdlinePath}')
[ -n "$slot" ] || { echo "no ota.slot in the kernel command line"; exit 2; }
p='${join(dev.root, 'slots')}'/$slot
if [ -d "$p" ]; then
  test -f "$p/etc/healthy" && echo "slot $slot: $(cat "$p/etc/healthy")" || { echo "slot $slot: /etc/healthy is missing"; exit 1; }
else
  head -c 16 "$p" | grep -q HEALTHY && echo "slot $slot healthy" || { echo "slot $slot: the image does not say HEALTHY"; exit 1; }
fi
`,
    );
    await chmod(health, 0o755);
    const rebootLog = join(opts.root, 'reboots');
    const config: Record<string, unknown> = {
      device: { id: opts.id, compatible: opts.compatible },
      slots: [
        { name: 'A', kind: dev.kind, path: dev.slots.A },
        { name: 'B', kind: dev.kind, path: dev.slots.B },
      ],
      boot: dev.bootloader === 'uboot' ? { bootloader: 'uboot', fwEnvConfig: dev.fwEnvConfig, fwEnvConfigBackup: dev.fwEnvConfigBackup } : { grubenv: dev.grubenvPath },
      cmdlinePath: dev.cmdlinePath,
      rebootCommand: ['sh', '-c', `echo reboot >> '${rebootLog}'`],
      rebootTimeoutSeconds: 600,
      trustedKeys: opts.trustedKeys,
      dataDir: join(opts.root, 'data'),
      healthChecks: [{ name: 'app', command: [health], timeoutSeconds: 30 }],
      healthDeadlineSeconds: 60,
      ...opts.config,
    };
    await mkdir(join(opts.root, 'data'), { recursive: true });
    const configPath = join(opts.root, 'agent.json');
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
    return new FleetDevice(opts.id, dev, configPath, rebootLog, config, opts.env ?? {});
  }

  /** Receives every log line. */
  onLog(fn: (l: LogLine) => void): void {
    this.listeners.push(fn);
  }

  private say(source: LogLine['source'], text: string): void {
    for (const l of this.listeners) l({ device: this.id, source, text });
  }

  /** Replaces the environment of agent processes started from now on. */
  setEnv(env: Record<string, string>): void {
    this.env = env;
  }

  /** How many reboots the agent has asked for. */
  async reboots(): Promise<number> {
    const text = await readFile(this.rebootLog, 'utf8').catch(() => '');
    return text.split('\n').filter((l) => l === 'reboot').length;
  }

  /** Runs a technician command (`ota-agent <args> --config ...`) to completion. */
  async agent(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await execa('node', [AGENT_CLI, ...args, '--config', this.configPath], {
      reject: false,
      stdin: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...this.env, ...env },
      extendEnv: false,
    });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** `ota-agent status --json`, parsed. */
  async status(): Promise<Record<string, unknown>> {
    const r = await this.agent(['status', '--json']);
    if (r.code !== 0) throw new Error(`${this.id}: ota-agent status exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  /** Powers the device on and supervises it until `stop()`. */
  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.supervise();
  }

  /** Powers the device off (the daemon is killed as a power cut would) and waits for it. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.child?.kill('SIGKILL');
    await this.running;
    this.running = undefined;
  }

  /** True while the supervisor runs. */
  get isRunning(): boolean {
    return this.running !== undefined && !this.stopping;
  }

  private async supervise(): Promise<void> {
    let needBoot = true;
    while (!this.stopping) {
      if (needBoot) {
        const up = await bootUntilUp(this.dev);
        this.boots += up.boots;
        this.say('power', `booted slot ${up.slot}${up.boots > 1 ? ` after ${up.boots - 1} failed boot(s)` : ''} (${this.dev.bootloader === 'uboot' ? 'U-Boot' : 'GRUB'}: ORDER="${up.env.ORDER ?? ''}" A_OK=${up.env.A_OK ?? ''} A_TRY=${up.env.A_TRY ?? ''} B_OK=${up.env.B_OK ?? ''} B_TRY=${up.env.B_TRY ?? ''})`);
        needBoot = false;
        // Stopped while booting: stop() killed the daemon before this boot, not the next one.
        if (this.stopping) break;
      }
      const before = await this.reboots();
      this.daemons++;
      const child = execa('node', [AGENT_CLI, 'daemon', '--config', this.configPath], {
        reject: false,
        stdin: 'ignore',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...this.env },
        extendEnv: false,
        all: true,
        buffer: false,
      });
      this.child = child;
      child.all?.setEncoding('utf8');
      let pending = '';
      child.all?.on('data', (d: string) => {
        pending += d;
        let nl: number;
        while ((nl = pending.indexOf('\n')) !== -1) {
          this.say('agent', pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      });
      let exited = false;
      const done = child.then((r) => {
        exited = true;
        return r;
      });
      while (!exited && !this.stopping) {
        if ((await this.reboots()) > before) {
          // The reboot command ran: the system goes down under the daemon.
          this.say('power', 'reboot');
          child.kill('SIGKILL');
          needBoot = true;
          break;
        }
        await sleep(25);
      }
      // stop() may have come between the spawn and this.child being read: never wait on a
      // daemon that was not killed.
      if (this.stopping && !exited) child.kill('SIGKILL');
      const r = await done;
      if (pending) this.say('agent', pending);
      if (this.stopping || needBoot) continue;
      if ((await this.reboots()) > before) {
        this.say('power', 'reboot');
        needBoot = true;
        continue;
      }
      if (r.exitCode === 0) {
        // A daemon without a server finishes its boot-time work and exits: the device idles
        // until a technician's command reboots it, or it is stopped.
        while (!this.stopping && (await this.reboots()) === before) await sleep(50);
        if (!this.stopping) {
          this.say('power', 'reboot');
          needBoot = true;
        }
        continue;
      }
      this.say('power', `ota-agent daemon exited ${r.exitCode ?? r.signal}; restarting it in 1 s`);
      await sleep(1000);
    }
  }
}
