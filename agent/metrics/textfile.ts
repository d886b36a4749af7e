/**
 * The agent's node-exporter textfile (`metricsTextfile`): the device's state, slot versions,
 * last check-in and last transaction outcome in the Prometheus text format, rewritten after
 * every check. node-exporter's textfile collector reads every `*.prom` file of its directory;
 * the file is written beside its final name and renamed over it, so a scrape never sees half
 * of one.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { DeviceState } from '../../shared/protocol.js';

const STATES: readonly DeviceState[] = ['idle', 'downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed', 'rolling-back', 'rolled-back', 'failed'];

/** What the textfile says. */
export interface AgentSnapshot {
  device: string;
  compatible: string;
  bootedSlot: string;
  state: DeviceState;
  /** Highest committed release, or null. */
  committed: string | null;
  slots: { name: string; version: string | null; status: string }[];
  /** The transaction in flight. */
  transaction: { version: string; state: string } | null;
  /** The newest finished transaction. */
  lastOutcome: { outcome: 'success' | 'failure'; version: string; reason: string | null; at: Date } | null;
  /** This check-in: when, and whether a verified answer came back. */
  checkin: { at: Date; ok: boolean };
}

/** Escapes a label value (backslash, quote, newline). */
function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

const seconds = (d: Date): string => (d.getTime() / 1000).toFixed(3);

/** The exposition text; `lastSuccess` is the last verified check-in known before this one. */
export function renderTextfile(s: AgentSnapshot, lastSuccess: Date | null): string {
  const out: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [Record<string, string>, string | number][]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of samples) out.push(`${name}${labels(l)} ${v}`);
  };
  const id = { device: s.device };
  metric('otaab_agent_info', 'gauge', 'The device, its type and the slot it booted from', [[{ ...id, compatible: s.compatible, booted_slot: s.bootedSlot }, 1]]);
  metric('otaab_agent_state', 'gauge', 'The update state the device is in (1 for the current one)', STATES.map((st) => [{ ...id, state: st }, st === s.state ? 1 : 0]));
  metric('otaab_agent_committed_version_info', 'gauge', 'The highest release the device committed', [[{ ...id, version: s.committed ?? 'none' }, 1]]);
  metric(
    'otaab_agent_slot_info',
    'gauge',
    'What each slot holds',
    s.slots.map((x) => [{ ...id, slot: x.name, version: x.version ?? 'unknown', status: x.status, booted: String(x.name === s.bootedSlot) }, 1]),
  );
  if (s.transaction) metric('otaab_agent_transaction_info', 'gauge', 'The transaction in flight', [[{ ...id, version: s.transaction.version, state: s.transaction.state }, 1]]);
  const success = s.checkin.ok ? s.checkin.at : lastSuccess;
  metric('otaab_agent_last_checkin_attempt_timestamp_seconds', 'gauge', 'When the device last tried to check in', [[id, seconds(s.checkin.at)]]);
  metric('otaab_agent_last_checkin_success', 'gauge', '1 when the last check-in got a verified answer', [[id, s.checkin.ok ? 1 : 0]]);
  if (success) metric('otaab_agent_last_checkin_timestamp_seconds', 'gauge', 'When the device last got a verified check-in answer', [[id, seconds(success)]]);
  if (s.lastOutcome) {
    const o = s.lastOutcome;
    metric('otaab_agent_last_outcome_info', 'gauge', 'How the last finished transaction ended', [[{ ...id, outcome: o.outcome, version: o.version, reason: o.reason ?? '' }, 1]]);
    metric('otaab_agent_last_outcome_timestamp_seconds', 'gauge', 'When the last transaction finished', [[id, seconds(o.at)]]);
  }
  return `${out.join('\n')}\n`;
}

/** The last verified check-in time an earlier textfile recorded, or null. */
export async function previousSuccess(file: string): Promise<Date | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  const m = /^otaab_agent_last_checkin_timestamp_seconds(?:\{[^}]*\})? ([0-9.]+)$/m.exec(text);
  return m ? new Date(Number(m[1]) * 1000) : null;
}

/** Writes the textfile atomically: a temporary file in the same directory, then a rename. */
export async function writeTextfile(file: string, s: AgentSnapshot): Promise<void> {
  const text = renderTextfile(s, await previousSuccess(file));
  // node-exporter ignores files not ending in .prom, so the temporary one is never read.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}
