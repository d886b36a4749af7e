/** Where the device test cuts the power, chosen from the update's durable-write trace. */
import type { TraceLine } from './vm.js';

/** Where a power cut lands: right after trace line `n`, plus `delayMs` (the reboot's points). */
export interface CutPoint {
  n: number;
  delayMs: number;
  label: string;
}

/** Picks `count` cut points spread over the golden trace: every kind, the grubenv writes, the reboot, the commit. */
export function pickPoints(trace: readonly TraceLine[], count: number, max?: number): CutPoint[] {
  const points = new Map<string, CutPoint>();
  const add = (n: number, delayMs = 0) => {
    const l = trace[n - 1];
    if (l) points.set(`${n}+${delayMs}`, { n, delayMs, label: `${l.kind} ${l.what}`.slice(0, 70) });
  };
  // Every grubenv write, the first and last of each kind.
  trace.forEach((l, i) => l.kind === 'grubenv' && add(i + 1));
  for (const kind of new Set(trace.map((l) => l.kind))) {
    add(trace.findIndex((l) => l.kind === kind) + 1);
    add(trace.length - [...trace].reverse().findIndex((l) => l.kind === kind));
  }
  // The reboot: the last write before the longest pause of the trace (the machine going down
  // and booting the new slot), then 3, 8 and 20 s into it.
  let gap = 1;
  for (let i = 1; i < trace.length; i++) if (trace[i]!.at - trace[i - 1]!.at > trace[gap]!.at - trace[gap - 1]!.at) gap = i;
  for (const d of [3000, 8000, 20000]) add(gap, d);
  // Then evenly over the rest.
  for (let k = 1; points.size < count && k <= count * 2; k++) add(Math.max(1, Math.round((k * trace.length) / (count + 1))));
  const all = [...points.values()].sort((a, b) => a.n - b.n || a.delayMs - b.delayMs);
  // A short run (--ci) asks for fewer than the must-haves: an even stride over them.
  if (max === undefined || all.length <= max) return all;
  return Array.from({ length: max }, (_, i) => all[Math.floor((i * all.length) / max)]!);
}

