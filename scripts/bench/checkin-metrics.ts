/**
 * Benchmark 4b: the check-in benchmark with the server's Prometheus metrics on (the default, as
 * benchmark 4 runs) against the same load on a server started with `--metrics off`, in the same
 * run: signed answers per second (closed loop) and p99 latency under the open-loop rate, each
 * as a ratio off/on, so the cost of metrics reads as a share rather than as noisy absolutes.
 */
import type { CheckinLoadStats } from '../fleet/load.js';
import { benchCheckin, type CheckinBenchOptions } from './checkin.js';
import type { BenchRow } from './util.js';

/** A latency for the table: NaN when a run had no answers (its latencies are null). */
const num = (n: number | null | undefined): number => (typeof n === 'number' ? n : NaN);
/** A latency for a note: a dash when a run had no answers. */
const ms = (n: number | null | undefined): string => (typeof n === 'number' ? `${n.toFixed(1)} ms` : '-');

/** The median run of `runs` by `by`. */
function median(runs: readonly CheckinLoadStats[], by: (s: CheckinLoadStats) => number): CheckinLoadStats {
  const sorted = [...runs].sort((a, b) => by(a) - by(b));
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs the check-in load against a server with metrics off and compares it with `on` (benchmark 4's stats). */
export async function benchCheckinMetrics(work: string, o: CheckinBenchOptions, on: { closed: CheckinLoadStats[]; open: CheckinLoadStats[] }): Promise<{ rows: BenchRow[]; closed: CheckinLoadStats[]; open: CheckinLoadStats[] }> {
  const off = await benchCheckin(work, { ...o, serverArgs: [...(o.serverArgs ?? []), '--metrics', 'off'] });
  const rate = (s: CheckinLoadStats): number => s.perSecond;
  const p99 = (s: CheckinLoadStats): number => s.latencyMs.p99;
  const [cOn, cOff] = [median(on.closed, rate), median(off.closed, rate)];
  const [pOn, pOff] = [median(on.open, p99), median(off.open, p99)];
  const served = (s: CheckinLoadStats): boolean => s.perSecond >= o.rate * 0.98 && Object.keys(s.statuses).every((k) => k === '200');
  return {
    closed: off.closed,
    open: off.open,
    rows: [
      {
        bench: 'checkin-metrics',
        metric: `signed check-in answers/s with metrics on (baseline: metrics off), ${o.devices} devices, ${o.concurrency} in flight`,
        ours: cOn.perSecond,
        baseline: cOff.perSecond,
        unit: '/s',
        ratio: cOn.perSecond / cOff.perSecond,
        goal: `≥ ${o.rate} with metrics on`,
        met: cOn.perSecond >= o.rate,
        note: `median of ${o.runs} runs each, the same load against two fresh servers, one after the other; p99 ${ms(cOn.latencyMs.p99)} on, ${ms(cOff.latencyMs.p99)} off`,
      },
      {
        bench: 'checkin-metrics',
        metric: `check-in p99 latency at ${o.rate}/s offered with metrics on (baseline: metrics off)`,
        ours: num(pOn.latencyMs.p99),
        baseline: num(pOff.latencyMs.p99),
        unit: 'ms',
        // Lower is better: the ratio is off/on, as for a throughput.
        ratio: num(pOff.latencyMs.p99) / Math.max(num(pOn.latencyMs.p99), 1e-3),
        goal: `< ${o.p99GoalMs} with metrics on, all ${o.rate}/s served`,
        met: pOn.latencyMs.p99 < o.p99GoalMs && served(pOn),
        note: `median of ${o.runs}: on p50 ${ms(pOn.latencyMs.p50)}, ${pOn.perSecond.toFixed(0)}/s answered; off p50 ${ms(pOff.latencyMs.p50)}, ${pOff.perSecond.toFixed(0)}/s answered`,
      },
    ],
  };
}
