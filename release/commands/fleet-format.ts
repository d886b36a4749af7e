/** Plain-text tables and option parsing shared by the fleet commands of ota-release. */
import { UsageError, list } from '../../shared/cli.js';

/** The options of every command that shows what the server holds. */
export const SHOW_OPTIONS = `Options:
  --server URL    server base URL (default: OTA_SERVER)
  --json          print the server's answer as JSON`;

/** Left-aligned columns, one row a line. */
export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Repeated `--attr NAME=VALUE` options as an object. */
export function attrOption(values: Record<string, unknown>, key = 'attr'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list(values[key])) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`option --${key} takes NAME=VALUE, not "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** A number option in [min, max], or a usage error naming it. */
export function numberOption(values: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = values[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`option --${key} must be a number from ${min} to ${max}, not "${String(v)}"`);
  return n;
}

/** `--phases 1%,10%,50%,100%` or `--phases 5,20,100%`: percentages and device counts. */
export function phasesOption(v: unknown): ({ percent: number } | { count: number })[] | undefined {
  if (v === undefined) return undefined;
  return String(v)
    .split(',')
    .map((p) => {
      const t = p.trim();
      const n = Number(t.endsWith('%') ? t.slice(0, -1) : t);
      if (!Number.isFinite(n) || n <= 0 || t === '' || t === '%') throw new UsageError(`option --phases: "${t}" is neither a percentage (10%) nor a device count (5)`);
      return t.endsWith('%') ? { percent: n } : { count: n };
    });
}

/** One line per phase of a rollout. */
export function phaseLines(r: RolloutLike): string {
  return (
    r.phases
      .map((p, i) => {
        const c = r.counts[i]!;
        const open = i <= r.phase ? (i === r.phase ? 'open (last)' : 'open') : 'closed';
        const label = 'percent' in p ? `${p.percent}%` : `${p.count} devices`;
        return `  phase ${i + 1} ${label.padEnd(12)} ${open.padEnd(11)} ${c.members} devices: ${c.success} ok, ${c.failure} failed, ${c.installing} installing, ${c.offered} offered, ${c.waiting} waiting`;
      })
      .join('\n') + '\n'
  );
}

/** The fields of a rollout the text output uses. */
export interface RolloutLike {
  id: string;
  product: string;
  version: string;
  kind: string;
  state: string;
  phase: number;
  reason: string | null;
  phases: ({ percent: number } | { count: number })[];
  counts: { members: number; success: number; failure: number; installing: number; offered: number; waiting: number }[];
  totals: { members: number; success: number; failure: number };
  target: { channel: string | null; tags: readonly string[]; attributes: Readonly<Record<string, string>> };
}
