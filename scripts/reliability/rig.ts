/**
 * A simulated device under power-cut test: a FleetDevice (real GRUB, supervised daemon) whose
 * agent processes are numbered from the moment the rig is armed, each tracing its durable
 * writes to its own file, one of them set to SIGKILL itself after its k-th write. A cut is a
 * power cut: the supervisor is stopped (nothing else runs), the device is inspected exactly as
 * the cut left it, then powered on again, so it boots through GRUB before the agent runs.
 * Every boot is checked as it happens: the slot that came up must hold a whole, verified release.
 */
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Store } from '../../agent/store/store.js';
import { AGENT_CLI, FleetDevice } from '../fleet/device.js';
import { bootedSlot, type SimDevice } from '../sim/simulator.js';
import { UBootBootloader } from '../../agent/boot/uboot.js';
import { UBOOT_ENV_FILES } from '../sim/ubootenv.js';
import { hashFile } from '../../shared/hashing.js';
import { identifySlot, treeDigest, type ReleaseContent } from './digest.js';
import { checkBootableSlots, envOk, type DeviceSeen, type Slot } from './invariants.js';

/** Where to cut: after the k-th durable write of the agent process numbered `process`. */
export interface CutPlan {
  process: number;
  k: number;
}

/** What one boot brought up. */
export interface BootSeen {
  slot: Slot;
  env: Record<string, string>;
  holds: string | null;
}

/** The server side of a device, when it talks to one. */
export interface RigServer {
  url: string;
  token: string;
  serverKey: string;
  pollSeconds: number;
}

/** Options of a rig. */
export interface RigOptions {
  root: string;
  id: string;
  kind: 'fs' | 'raw';
  trustedKeys: string[];
  server?: RigServer;
  /** Releases a slot may hold, by name; 'factory' is added from slot A as created. */
  known: ReadonlyMap<string, ReleaseContent>;
  /** `uboot`: boots through real U-Boot, the agent uses the U-Boot backend (default grub). */
  bootloader?: 'grub' | 'uboot';
}

/** Parses the env the supervisor prints for a boot: `(GRUB: ORDER="A B" A_OK=1 ...)`. */
export function parseBootLine(text: string): { slot: Slot; env: Record<string, string> } | undefined {
  const m = /^booted slot ([AB]).*\((?:GRUB|U-Boot): (.*)\)$/.exec(text);
  if (!m) return undefined;
  const env: Record<string, string> = {};
  for (const kv of m[2]!.matchAll(/(\w+)=("[^"]*"|\S*)/g)) env[kv[1]!] = kv[2]!.replace(/^"|"$/g, '');
  return { slot: m[1] as Slot, env };
}

/** Reads a grubenv block without grub-editenv (polled often; the format is KEY=VALUE lines). */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(path, 'latin1')).split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/**
 * uboot: a cut right after the agent's fw_setenv of the primary env copy is turned into a cut
 * *during* that fw_setenv: the primary is torn (bytes overwritten, its CRC fails) while the
 * second copy still holds the env from before the write, exactly what power lost in the middle
 * of writing the primary leaves. U-Boot must then boot from the second copy.
 */
async function tearUbootCopy(dev: SimDevice, cut: { write: string } | undefined): Promise<void> {
  if (dev.bootloader !== 'uboot' || !cut || !cut.write.startsWith('ubootenv') || !cut.write.endsWith('(primary)')) return;
  const fh = await open(join(dev.bootDir, UBOOT_ENV_FILES.primary), 'r+');
  try {
    await fh.write(Buffer.from('cut!'), 0, 4, 8);
  } finally {
    await fh.close();
  }
}

/** A device with numbered, traced and optionally cut agent processes. */
export class PowerRig {
  /** Violations seen while it ran (at boots, right after the cut). */
  readonly problems: string[] = [];
  /** Every boot since it was armed. */
  readonly boots: BootSeen[] = [];
  /** The cut that happened: process, write number and what the write was. */
  cut: (CutPlan & { write: string }) | undefined;
  /** The last lines the device said (for a failure's report). */
  readonly logTail: string[] = [];
  private processes = 0;
  private armed = false;
  private plan: CutPlan | undefined;
  private cycling: Promise<void> | undefined;
  private cyclingNow = false;
  private pending: Promise<void>[] = [];

  private constructor(
    readonly device: FleetDevice,
    readonly known: Map<string, ReleaseContent>,
    readonly traceDir: string,
  ) {
    device.onLog((l) => this.onLog(l.source, l.text));
  }

  /** Lays out the device (not yet powered on). */
  static async create(opts: RigOptions): Promise<PowerRig> {
    const config: Record<string, unknown> = {
      // Raw slots are fsynced at checkpoints: small ones, so that downloads have several.
      checkpointBytes: 64 * 1024,
      // A reboot takes a moment, as `systemctl reboot` does: the command returns at once and the
      // system goes down a second later (FleetDevice's log line), so what the agent writes in
      // between (the reports it sends) happens in every run, and gets its own cuts.
      rebootCommand: ['sh', '-c', `(sleep 1; echo reboot >> '${join(opts.root, 'reboots')}') >/dev/null 2>&1 &`],
      ...(opts.server ? { server: { url: opts.server.url, token: opts.server.token, serverKey: opts.server.serverKey, pollIntervalSeconds: opts.server.pollSeconds } } : {}),
    };
    const device = await FleetDevice.create({ root: opts.root, id: opts.id, compatible: 'x86-gw', kind: opts.kind, slotSize: 4 << 20, trustedKeys: opts.trustedKeys, config, bootloader: opts.bootloader ?? 'grub' });
    const known = new Map(opts.known);
    const a = device.dev.slots.A;
    // Like a factory image, both slots hold the factory system: grub/README.md's initial env
    // marks both bootable, and an empty slot B marked bootable is no state to start a test in.
    await execa('cp', ['-a', device.dev.kind === 'fs' ? `${a}/.` : a, device.dev.slots.B]);
    // The factory system as laid out: slot A is never written, so all of it must stay as it is.
    known.set('factory', device.dev.kind === 'fs' ? { kind: 'fs', digest: await treeDigest(a) } : { kind: 'raw', length: (await stat(a)).size, sha256: (await hashFile(a)).sha256 });
    const rig = new PowerRig(device, known, join(opts.root, 'traces'));
    await mkdir(rig.traceDir, { recursive: true });
    return rig;
  }

  private onLog(source: string, text: string): void {
    this.logTail.push(`${source}: ${text}`);
    if (this.logTail.length > 300) this.logTail.shift();
    if (source !== 'power') return;
    const boot = parseBootLine(text);
    if (boot) {
      this.nextDaemon();
      this.pending.push(this.checkBoot(boot.slot, boot.env));
      return;
    }
    if (/^ota-agent daemon exited SIGKILL; restarting/.test(text)) {
      // The agent cut itself: that is a power cut, not a crashed service. No restart without a boot.
      this.cyclingNow = true;
      this.cycling = this.powerCycle().finally(() => {
        this.cyclingNow = false;
      });
    } else if (/^ota-agent daemon exited .*; restarting/.test(text)) {
      this.nextDaemon();
    }
  }

  /** Sets the environment of the daemon the supervisor is about to start. */
  private nextDaemon(): void {
    this.device.setEnv(this.envFor(this.armed ? this.processes++ : -1));
  }

  private envFor(index: number): Record<string, string> {
    if (index < 0) return {};
    const env: Record<string, string> = { OTA_DURABLE_TRACE: join(this.traceDir, `p${index}`) };
    if (this.plan && !this.cut && this.plan.process === index) env.OTA_CRASH_AFTER_WRITE = String(this.plan.k);
    return env;
  }

  private async checkBoot(slot: Slot, env: Record<string, string>): Promise<void> {
    const holds = await identifySlot(this.device.dev.slots[slot], this.known);
    this.boots.push({ slot, env, holds });
    if (this.armed && holds === null) this.problems.push(`boot ${this.boots.length}: GRUB booted slot ${slot}, whose bytes are no verified release`);
  }

  /** From now on agent processes are numbered, traced, and `plan` (if any) cuts one of them. */
  arm(plan?: CutPlan): void {
    this.armed = true;
    this.plan = plan;
    this.processes = 0;
  }

  /** How many agent processes ran since `arm`. */
  get processCount(): number {
    return this.processes;
  }

  /** Powers the device on (it boots through GRUB, then the daemon starts). */
  start(): void {
    this.device.start();
  }

  /** Powers it off, as a power cut would (the daemon is SIGKILLed). */
  async stop(): Promise<void> {
    await this.cycling;
    await this.device.stop();
    await Promise.all(this.pending);
  }

  private async powerCycle(): Promise<void> {
    await this.device.stop();
    await this.noteCut(this.processes - 1);
    await tearUbootCopy(this.device.dev, this.cut);
    // The device exactly as the cut left it, before GRUB runs again.
    for (const p of checkBootableSlots(await this.seen())) this.problems.push(`right after the cut: ${p}`);
    this.device.start();
  }

  private async noteCut(index: number): Promise<void> {
    if (!this.plan || this.cut) return;
    const lines = (await readFile(join(this.traceDir, `p${index}`), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    this.cut = { process: index, k: lines.length, write: lines.at(-1)?.split('\t').slice(1).join(' ') ?? '?' };
    if (index !== this.plan.process || lines.length !== this.plan.k) this.problems.push(`the cut came after write ${lines.length} of process ${index}, planned after write ${this.plan.k} of process ${this.plan.process}`);
  }

  /**
   * Runs `ota-agent <args>` as a technician would, numbered like the daemons once armed. When
   * its own cut kills it, the power goes: the device is stopped, inspected and powered on.
   * Returns its exit code (null when it was cut).
   */
  async tech(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const index = this.armed ? this.processes++ : -1;
    const r = await execa('node', [AGENT_CLI, ...args, '--config', this.device.configPath], {
      reject: false,
      stdin: 'ignore',
      // Explicit empties: FleetDevice's own env (set for daemons) must not reach this process.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', OTA_CRASH_AFTER_WRITE: '', OTA_DURABLE_TRACE: '', ...this.envFor(index) },
      extendEnv: false,
      forceKillAfterDelay: false,
    });
    if (r.signal === 'SIGKILL') {
      const wasRunning = this.device.isRunning;
      if (wasRunning) await this.device.stop();
      await this.noteCut(index);
      await tearUbootCopy(this.device.dev, this.cut);
      for (const p of checkBootableSlots(await this.seen())) this.problems.push(`right after the cut: ${p}`);
      return { code: null, stderr: String(r.stderr) };
    }
    return { code: r.exitCode ?? null, stderr: String(r.stderr) };
  }

  /** The durable writes of each process since `arm`, as traced: `kind what` per write. */
  async traces(): Promise<string[][]> {
    const out: string[][] = [];
    for (let i = 0; i < this.processes; i++) {
      const f = join(this.traceDir, `p${i}`);
      const text = existsSync(f) ? await readFile(f, 'utf8') : '';
      out.push(text.split('\n').filter(Boolean).map((l) => l.split('\t').slice(1).join(' ')));
    }
    return out;
  }

  /** The device as it is now (call it powered off): grubenv, slots' contents, the store's view. */
  async seen(): Promise<DeviceSeen> {
    const d = this.device.dev;
    const env = await this.env();
    let storeSlots: Record<Slot, { version: string | null; status: string }> = { A: { version: null, status: '?' }, B: { version: null, status: '?' } };
    let storeError: string | undefined;
    try {
      const s = Store.open(this.dataDir);
      try {
        const sl = s.slots();
        storeSlots = { A: { version: sl.A.version, status: sl.A.status }, B: { version: sl.B.version, status: sl.B.status } };
      } finally {
        s.close();
      }
    } catch (err) {
      storeError = err instanceof Error ? err.message : String(err);
    }
    const slot = async (name: Slot) => ({ ok: envOk(env, name), holds: await identifySlot(d.slots[name], this.known), store: storeSlots[name] });
    return { booted: await bootedSlot(d), env, slots: { A: await slot('A'), B: await slot('B') }, ...(storeError ? { storeError } : {}) };
  }

  /** The boot env as the bootloader will read it (U-Boot: primary, else the second copy, via fw_printenv). */
  async env(): Promise<Record<string, string>> {
    const d = this.device.dev;
    if (d.bootloader === 'uboot') return new UBootBootloader({ primaryConfig: d.fwEnvConfig, backupConfig: d.fwEnvConfigBackup }).env();
    return readEnvFile(d.grubenvPath);
  }

  /** The agent's data directory. */
  get dataDir(): string {
    return this.device.config.dataDir as string;
  }

  /** Reads the store without writing to it (the daemon may be running). */
  peek<T>(fn: (db: Database.Database) => T): T | undefined {
    const path = join(this.dataDir, 'agent.db');
    if (!existsSync(path)) return undefined;
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 2000');
      return fn(db);
    } catch {
      // Mid-migration or locked for longer than the timeout: try again at the next poll.
      return undefined;
    } finally {
      db.close();
    }
  }

  /** True while a power cycle after a cut is under way (the device is off, being inspected). */
  get cycleInProgress(): boolean {
    return this.cyclingNow;
  }
}
