/**
 * Driving a rig to where a scenario needs it, without timing assumptions: every wait polls
 * for a state of the device (its store, read-only; its grubenv; its booted slot) or of the
 * server (the device's history), and must see it twice in a row, never while a power cycle
 * is under way. A wait that is not met in time fails with the device's last log lines.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { api } from '../fleet/server.js';
import { bootedSlot } from '../sim/simulator.js';
import type { ServerReport, Slot } from './invariants.js';
import type { PowerRig } from './rig.js';

/** The server a device reports to, as the harness reads it (ops token). */
export interface ServerView {
  url: string;
  ops: string;
  device: string;
}

/** Polls `ok` until it holds twice in a row; throws after `timeoutMs`. */
export async function waitUntil(what: string, rig: PowerRig, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let stable = 0;
  while (stable < 2) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs / 1000} s; the device said:\n  ${rig.logTail.slice(-25).join('\n  ')}`);
    await sleep(250);
    stable = !rig.cycleInProgress && (await ok()) ? stable + 1 : 0;
  }
}

/** Waits until slot `slot` is up and its boot was assessed (try counter back to 0). */
export async function waitBooted(rig: PowerRig, slot: Slot, timeoutMs = 60_000): Promise<void> {
  await waitUntil(`slot ${slot} up and assessed`, rig, async () => (await bootedSlot(rig.device.dev)) === slot && (await rig.env())[`${slot}_TRY`] === '0', timeoutMs);
}

/** The device's reports as the server stored them. */
export async function deviceReports(s: ServerView): Promise<ServerReport[]> {
  return (await api<{ reports: ServerReport[] }>(s.url, s.ops, 'GET', `/v1/devices/${encodeURIComponent(s.device)}`)).reports;
}

/**
 * Waits for rest: a transaction newer than the first `txBefore` ended, none in flight, the
 * booted slot assessed and, with a server, every report sent and the outcome on the server.
 * Returns the transaction's id.
 */
export async function waitRest(rig: PowerRig, txBefore: number, server: ServerView | undefined, timeoutMs: number): Promise<string> {
  let txId = '';
  await waitUntil('rest', rig, async () => {
    const st = rig.peek((db) => ({
      n: (db.prepare('SELECT count(*) AS n FROM transactions').get() as { n: number }).n,
      inflight: (db.prepare('SELECT count(*) AS n FROM transactions WHERE finished_at IS NULL').get() as { n: number }).n,
      newest: db.prepare('SELECT id, finished_at FROM transactions ORDER BY created_at DESC, rowid DESC LIMIT 1').get() as { id: string; finished_at: string | null } | undefined,
      unsent: (db.prepare('SELECT count(*) AS n FROM outbox WHERE sent = 0').get() as { n: number }).n,
    }));
    if (!st || st.n <= txBefore || st.inflight > 0 || !st.newest?.finished_at) return false;
    const booted = await bootedSlot(rig.device.dev);
    if (!booted || (await rig.env())[`${booted}_TRY`] !== '0') return false;
    txId = st.newest.id;
    if (!server) return true;
    if (st.unsent > 0) return false;
    return (await deviceReports(server)).some((r) => r.transaction === txId && r.outcome !== null);
  }, timeoutMs);
  return txId;
}

/** Transactions in the device's store so far (0 before the store exists). */
export function transactionCount(rig: PowerRig): number {
  return rig.peek((db) => (db.prepare('SELECT count(*) AS n FROM transactions').get() as { n: number }).n) ?? 0;
}

/** Powers a fresh device on, waits for its first boot to be assessed, and marks the factory system good. */
export async function factoryBaseline(rig: PowerRig): Promise<void> {
  rig.start();
  await waitBooted(rig, 'A');
  const mg = await rig.tech(['mark-good']);
  if (mg.code !== 0) throw new Error(`baseline: ota-agent mark-good exited ${mg.code}: ${mg.stderr}`);
}
