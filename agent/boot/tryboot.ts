/**
 * The Raspberry Pi `tryboot` backend (Pi 4, CM4, Pi 5 with a 2023 or later EEPROM): the
 * firmware reads `autoboot.txt` on the first FAT partition; with `tryboot_a_b=1` it boots the
 * `[all]` section's `boot_partition` normally and the `[tryboot]` section's `boot_partition`
 * once after `reboot '0 tryboot'`. Any crash or reset after that one boot returns to the
 * default: one try per update, so a hardware watchdog is needed to turn a hang into a reset.
 *
 * The agent's view is the same as with GRUB and U-Boot (ORDER, X_OK, X_TRY, MAX_TRIES=1): it
 * is kept on a comment line of autoboot.txt, so firmware state and agent state change in one
 * write. The try is counted when the agent asks for the tryboot reboot (the firmware cannot
 * count), so a try that crashes lands on the default slot with X_TRY=1: "tried and fell back".
 * autoboot.txt is replaced power-safely: write a temp file, fsync it, rename it over, fsync
 * the directory.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { otherSlot, SLOT_NAMES, type SlotName } from '../config/types.js';
import { durablyAsync } from '../infra/durable.js';
import { fsyncPath } from '../../shared/fsync.js';
import type { Bootloader, SlotBootState } from './bootloader.js';

/** The firmware reads at most this much of autoboot.txt. */
export const AUTOBOOT_MAX_BYTES = 512;

const STATE_PREFIX = '# otaab:';

/** Everything autoboot.txt holds for the agent. */
export interface TrybootState {
  order: [SlotName, SlotName];
  ok: Record<SlotName, boolean>;
  tries: Record<SlotName, number>;
  /** The slot of `[all] boot_partition`: booted after any normal reset. */
  def: SlotName;
  /** The slot of `[tryboot] boot_partition`: booted once after the tryboot reboot. */
  trySlot: SlotName;
}

/** What the firmware tells the running system (/proc/device-tree/chosen/bootloader). */
export interface BootFacts {
  /** The partition booted. */
  partition: number;
  /** True when this boot was the one-shot tryboot. */
  tryboot: boolean;
}

/** Options of the backend. */
export interface TrybootOptions {
  /** autoboot.txt on the mounted FAT boot partition. */
  readonly autoboot: string;
  /** Boot partition number of each slot. */
  readonly partitions: { readonly A: number; readonly B: number };
  /** The device-tree node with `partition` and `tryboot` (big-endian u32 each). */
  readonly deviceTree: string;
  /** The reboot that boots the [tryboot] partition once. */
  readonly trybootCommand: readonly string[];
}

/** Parses autoboot.txt; `partitions` maps partition numbers back to slots. */
export function parseAutoboot(text: string, partitions: { A: number; B: number }, where: string): TrybootState {
  let section = 'all';
  const parts: Record<string, number | undefined> = {};
  let stateLine: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith(STATE_PREFIX)) stateLine = line.slice(STATE_PREFIX.length);
    if (line === '' || line.startsWith('#')) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    const kv = /^boot_partition\s*=\s*(\d+)$/.exec(line);
    if (kv) parts[section] = Number(kv[1]);
  }
  const slotOf = (n: number | undefined, what: string): SlotName => {
    if (n === partitions.A) return 'A';
    if (n === partitions.B) return 'B';
    throw new OtaError('BOOTENV_FAILED', `${where}: ${what} is ${n ?? 'missing'}, not slot A's partition ${partitions.A} or slot B's ${partitions.B}`);
  };
  const def = slotOf(parts.all, '[all] boot_partition');
  const trySlot = parts.tryboot === undefined ? def : slotOf(parts.tryboot, '[tryboot] boot_partition');
  const vars: Record<string, string> = {};
  for (const word of (stateLine ?? '').trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq > 0) vars[word.slice(0, eq)] = word.slice(eq + 1);
  }
  const order = (vars.ORDER ?? '').split(',').filter((s): s is SlotName => s === 'A' || s === 'B');
  const first = order[0] ?? def;
  const state: TrybootState = {
    order: [first, otherSlot(first)],
    ok: { A: vars.A_OK !== '0', B: vars.B_OK !== '0' },
    // A garbled counter counts as used, as the boot scripts read it.
    tries: { A: 0, B: 0 },
    def,
    trySlot,
  };
  for (const s of SLOT_NAMES) {
    const t = vars[`${s}_TRY`];
    state.tries[s] = t === undefined ? 0 : /^\d{1,3}$/.test(t) ? Number(t) : 1;
  }
  return state;
}

/** Renders autoboot.txt for `state` (ORDER is written with a comma: no spaces in the line's words). */
export function renderAutoboot(state: TrybootState, partitions: { A: number; B: number }): string {
  const s = state;
  return [
    `${STATE_PREFIX} ORDER=${s.order.join(',')} A_OK=${s.ok.A ? 1 : 0} B_OK=${s.ok.B ? 1 : 0} A_TRY=${s.tries.A} B_TRY=${s.tries.B}`,
    '# Written by ota-agent (rpi-tryboot backend); edit with ota-agent, not by hand.',
    '[all]',
    'tryboot_a_b=1',
    `boot_partition=${partitions[s.def]}`,
    '[tryboot]',
    `boot_partition=${partitions[s.trySlot]}`,
    '',
  ].join('\n');
}

/** Reads a big-endian u32 property file of the device tree. */
async function readU32(path: string): Promise<number> {
  const buf = await readFile(path);
  if (buf.length !== 4) throw new Error(`${path} holds ${buf.length} bytes, not a 4-byte big-endian number`);
  return buf.readUInt32BE(0);
}

/** What the firmware says about this boot, from the device tree. */
export async function readBootFacts(deviceTree: string): Promise<BootFacts> {
  try {
    const partition = await readU32(join(deviceTree, 'partition'));
    // Firmware that knows no tryboot leaves the property out: a normal boot.
    const tryboot = await readU32(join(deviceTree, 'tryboot')).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return 0;
      throw e;
    });
    return { partition, tryboot: tryboot === 1 };
  } catch (cause) {
    throw new OtaError('BOOTED_SLOT_UNKNOWN', `cannot read the booted partition from ${deviceTree} (${errorMessage(cause)}): the firmware is too old for tryboot, or boot.deviceTree is wrong`, { cause });
  }
}

/** The slot this system booted from, by the firmware's partition number. */
export async function readTrybootSlot(opts: Pick<TrybootOptions, 'deviceTree' | 'partitions'>): Promise<SlotName> {
  const facts = await readBootFacts(opts.deviceTree);
  if (facts.partition === opts.partitions.A) return 'A';
  if (facts.partition === opts.partitions.B) return 'B';
  throw new OtaError('BOOTED_SLOT_UNKNOWN', `the firmware booted partition ${facts.partition}, which is neither slot A's (${opts.partitions.A}) nor slot B's (${opts.partitions.B}): check boot.partitionA and boot.partitionB`);
}

/** Bootloader over autoboot.txt and the firmware's one-shot tryboot. */
export class TrybootBootloader implements Bootloader {
  constructor(readonly opts: TrybootOptions) {}

  private async read(): Promise<TrybootState> {
    let text: string;
    try {
      text = await readFile(this.opts.autoboot, 'utf8');
    } catch (cause) {
      throw new OtaError('BOOTENV_FAILED', `cannot read ${this.opts.autoboot} (${errorMessage(cause)}): is the FAT boot partition mounted at boot.autoboot's folder?`, { cause });
    }
    return parseAutoboot(text, this.opts.partitions, this.opts.autoboot);
  }

  /** The agent's variables, plus what firmware and device tree say (DEFAULT, TRY, TRYBOOT). */
  async env(): Promise<Record<string, string>> {
    const s = await this.read();
    const env: Record<string, string> = {
      ORDER: s.order.join(' '),
      A_OK: s.ok.A ? '1' : '0',
      B_OK: s.ok.B ? '1' : '0',
      A_TRY: String(s.tries.A),
      B_TRY: String(s.tries.B),
      MAX_TRIES: '1',
      DEFAULT: s.def,
      TRY: s.trySlot,
    };
    const facts = await readBootFacts(this.opts.deviceTree).catch(() => undefined);
    if (facts) env.TRYBOOT = facts.tryboot ? '1' : '0';
    return env;
  }

  async getState(slot: SlotName): Promise<SlotBootState> {
    const s = await this.read();
    return { ok: s.ok[slot], tries: s.tries[slot] };
  }

  /** The slot the next reboot the agent asks for lands on. */
  async getPrimary(): Promise<SlotName> {
    const s = await this.read();
    return this.pendingTry(s) ? s.trySlot : s.def;
  }

  private pendingTry(s: TrybootState): boolean {
    return s.trySlot !== s.def && s.order[0] === s.trySlot && s.ok[s.trySlot] && s.tries[s.trySlot] < 1;
  }

  /** good: OK, tries reset, and the default when it is first in ORDER (the commit); bad: skipped. */
  async setState(slot: SlotName, state: 'good' | 'bad'): Promise<void> {
    await this.update(`mark ${slot} ${state}`, (s) => {
      if (state === 'good') {
        s.ok[slot] = true;
        s.tries[slot] = 0;
        if (s.order[0] === slot) {
          s.def = slot;
          s.trySlot = slot;
        }
      } else {
        s.ok[slot] = false;
        if (s.trySlot === slot) s.trySlot = s.def;
      }
    });
  }

  /** Makes `slot` the one tried at the next (tryboot) reboot; the default stays until the commit. */
  async setPrimary(slot: SlotName, opts: { disableOther?: boolean } = {}): Promise<void> {
    const other = otherSlot(slot);
    await this.update(`make ${slot} primary${opts.disableOther ? `, ${other} bad` : ''}`, (s) => {
      s.ok[slot] = true;
      s.tries[slot] = 0;
      s.order = [slot, other];
      s.trySlot = slot;
      if (opts.disableOther) s.ok[other] = false;
    });
  }

  /**
   * The reboot command to use now: with a try pending, count it (X_TRY=1, written before the
   * reboot) and ask for the tryboot reboot; otherwise undefined (the normal rebootCommand).
   */
  async rebootCommand(): Promise<readonly string[] | undefined> {
    const s = await this.read();
    if (!this.pendingTry(s)) return undefined;
    await this.update(`count the tryboot of ${s.trySlot}`, (n) => {
      n.tries[n.trySlot] = 1;
    });
    return this.opts.trybootCommand;
  }

  /** Applies `change` and replaces autoboot.txt when anything changed. */
  private async update(what: string, change: (s: TrybootState) => void): Promise<void> {
    const cur = await this.read();
    const next: TrybootState = structuredClone(cur);
    change(next);
    // Never leave the firmware's default on a disarmed slot while the other one is bootable.
    if (!next.ok[next.def] && next.ok[otherSlot(next.def)]) next.def = otherSlot(next.def);
    if (!next.ok[next.trySlot]) next.trySlot = next.def;
    const text = renderAutoboot(next, this.opts.partitions);
    if (text === renderAutoboot(cur, this.opts.partitions)) return;
    if (Buffer.byteLength(text) > AUTOBOOT_MAX_BYTES) throw new OtaError('BOOTENV_FAILED', `${this.opts.autoboot}: ${Buffer.byteLength(text)} bytes is more than the firmware reads (${AUTOBOOT_MAX_BYTES})`);
    const dir = dirname(this.opts.autoboot);
    const tmp = join(dir, `${basename(this.opts.autoboot)}.tmp`);
    await durablyAsync('autoboot', `${what}: default ${next.def}, tryboot ${next.trySlot}`, async () => {
      try {
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(text);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.opts.autoboot);
        await fsyncPath(dir);
      } catch (cause) {
        await unlink(tmp).catch(() => undefined);
        throw new OtaError('BOOTENV_FAILED', `${this.opts.autoboot}: ${what} failed (${errorMessage(cause)})`, { cause });
      }
    });
  }
}
