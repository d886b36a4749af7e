/** The device's state for `ota-agent status`: slots, boot environment, transaction in flight. */
import type { BootloaderKind, SlotName } from '../config/types.js';
import type { Device } from './device.js';
import { slotState } from '../boot/grubenv.js';
import type { SlotStatus, Transaction } from '../store/types.js';

/** One slot as status shows it. */
export interface SlotView {
  readonly name: SlotName;
  readonly kind: 'raw' | 'fs';
  readonly path: string;
  readonly booted: boolean;
  readonly version: string | null;
  readonly status: SlotStatus;
  /** From the boot environment: X_OK and X_TRY. */
  readonly bootable: boolean;
  readonly tries: number;
}

/** The whole status. */
export interface StatusView {
  readonly device: { readonly id: string; readonly compatible: string };
  readonly booted: SlotName;
  readonly nextBoot: SlotName;
  readonly highestCommitted: string | null;
  readonly slots: readonly SlotView[];
  readonly transaction: TransactionView | null;
  /** The backend (config boot.bootloader); it names what bootEnv was read from. */
  readonly bootloader: BootloaderKind;
  /** Every variable of the boot environment: grubenv, the U-Boot env, or tryboot's state as variables. */
  readonly bootEnv: Record<string, string>;
}

/** How status labels each backend's boot environment for people. */
export const BOOT_ENV_LABEL: Record<BootloaderKind, string> = { grub: 'grubenv', uboot: 'U-Boot env', 'rpi-tryboot': 'tryboot' };

/** A transaction as status and history show it (no manifest bytes). */
export interface TransactionView {
  readonly id: string;
  readonly kind: string;
  readonly origin: string;
  readonly version: string;
  readonly state: string;
  readonly sourceSlot: SlotName;
  readonly targetSlot: SlotName;
  readonly source: string | null;
  readonly bytesRead: number;
  readonly bytesTotal: number | null;
  readonly transitions: number;
  readonly reason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | null;
}

/** The public view of a transaction. */
export function transactionView(t: Transaction): TransactionView {
  return {
    id: t.id,
    kind: t.kind,
    origin: t.origin,
    version: t.version,
    state: t.state,
    sourceSlot: t.sourceSlot,
    targetSlot: t.targetSlot,
    source: t.source,
    bytesRead: t.bytesRead,
    bytesTotal: t.bytesTotal,
    transitions: t.transitions,
    reason: t.reason,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    finishedAt: t.finishedAt,
  };
}

/** Collects the status. */
export async function collectStatus(dev: Device): Promise<StatusView> {
  const env = await dev.boot.env();
  const infos = dev.store.slots();
  const tx = dev.store.current();
  return {
    device: { id: dev.config.device.id, compatible: dev.config.device.compatible },
    booted: dev.booted,
    nextBoot: await dev.boot.getPrimary(),
    highestCommitted: dev.store.highestCommitted(),
    slots: dev.config.slots.map((s) => {
      const b = slotState(env, s.name);
      const i = infos[s.name];
      return { name: s.name, kind: s.kind, path: s.path, booted: s.name === dev.booted, version: i.version, status: i.status, bootable: b.ok, tries: b.tries };
    }),
    transaction: tx ? transactionView(tx) : null,
    bootloader: dev.config.boot.bootloader,
    bootEnv: env,
  };
}

/** Status as lines for people. */
export function formatStatus(s: StatusView): string {
  const lines = [
    `device       ${s.device.id} (${s.device.compatible})`,
    `booted       slot ${s.booted}; next boot: slot ${s.nextBoot}`,
    `committed    ${s.highestCommitted ?? 'none yet'} (highest)`,
    '',
    'slot  kind  version          state       bootable  tries  path',
    ...s.slots.map(
      (x) =>
        `${(x.name + (x.booted ? '*' : '')).padEnd(5)} ${x.kind.padEnd(5)} ${(x.version ?? '-').padEnd(16)} ${x.status.padEnd(11)} ${(x.bootable ? 'yes' : 'no').padEnd(9)} ${String(x.tries).padEnd(6)} ${x.path}`,
    ),
    '',
  ];
  const t = s.transaction;
  if (t) {
    const progress = t.bytesTotal ? ` ${t.bytesRead}/${t.bytesTotal} bytes` : '';
    lines.push(`transaction  ${t.id}: ${t.kind} ${t.version} into slot ${t.targetSlot}, state ${t.state}${progress}${t.reason ? ` (${t.reason})` : ''}`);
  } else lines.push('transaction  none in flight');
  lines.push(`${BOOT_ENV_LABEL[s.bootloader].padEnd(12)} ${Object.entries(s.bootEnv).map(([k, v]) => `${k}=${v.includes(' ') ? `"${v}"` : v}`).join(' ')}`);
  return lines.join('\n');
}
