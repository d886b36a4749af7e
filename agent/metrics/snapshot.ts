/** The textfile's facts, read from the device's store after a check. */
import type { DeviceState } from '../../shared/protocol.js';
import type { Device } from '../actions/device.js';
import type { AgentSnapshot } from './textfile.js';

/** What the device's store says now, plus the check-in that just happened. */
export function snapshotOf(dev: Device, checkin: { at: Date; ok: boolean }): AgentSnapshot {
  const store = dev.store;
  const tx = store.current();
  const slots = store.slots();
  const finished = store.transactions(20).find((t) => t.finishedAt !== null);
  return {
    device: dev.config.device.id,
    compatible: dev.config.device.compatible,
    bootedSlot: dev.booted,
    state: (tx ? tx.state : 'idle') as DeviceState,
    committed: store.highestCommitted(),
    slots: dev.config.slots.map((s) => ({ name: s.name, version: slots[s.name].version, status: slots[s.name].status })),
    transaction: tx ? { version: tx.version, state: tx.state } : null,
    lastOutcome: finished
      ? { outcome: finished.state === 'committed' ? 'success' : 'failure', version: finished.version, reason: finished.reason, at: new Date(finished.finishedAt!) }
      : null,
    checkin,
  };
}
