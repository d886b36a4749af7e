/** Drives the agent in this process against a rig: open the device as booted, and read back. */
import { openDevice, type Device } from '../../../agent/actions/device.js';
import type { Transaction } from '../../../agent/store/types.js';
import type { Rig } from './rig.js';

/** Opens the device as it is booted now (the booted slot is read from the sim's cmdline). */
export function open(rig: Rig): Promise<Device> {
  return openDevice(rig.configPath);
}

/** Runs `fn` on a freshly opened device and closes it. */
export async function withDev<T>(rig: Rig, fn: (dev: Device) => Promise<T>): Promise<T> {
  const dev = await open(rig);
  try {
    return await fn(dev);
  } finally {
    dev.close();
  }
}

/** The states a transaction entered, in order (resumptions included). */
export function chain(dev: Device, tx: Transaction | string): string[] {
  const id = typeof tx === 'string' ? tx : tx.id;
  return dev.store.events({ transactionId: id }).filter((e) => e.type === 'transition').map((e) => e.toState ?? '');
}

/** The reports queued for a transaction: "state" or "state:outcome:reason". */
export function reports(dev: Device, tx: Transaction | string): string[] {
  const id = typeof tx === 'string' ? tx : tx.id;
  return dev.store
    .reports(id)
    .filter((r) => r.kind === 'state')
    .map((r) => [r.body.state, r.body.outcome, r.body.reason].filter((x) => x !== undefined).join(':'));
}

/** A log sink that keeps lines for assertions. */
export function logSink(): { lines: string[]; log: (l: string) => void } {
  const lines: string[] = [];
  return { lines, log: (l) => lines.push(l) };
}
