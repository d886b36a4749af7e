/**
 * Where the device test cuts the power, chosen from the update's durable-write trace.
 *
 * A point is named by the durable write's class and its ordinal within that class, not by its
 * global write number: the class is the write's kind (`store`, `slot-sync`, `grubenv`,
 * `report-sent`, `enrollment`) and its text with the run's ids, URLs and numbers taken out, so
 * `store:transaction-slot-bytes-durable#3` is "the store commit of download checkpoint 3" in
 * every run and every agent build, however many checkpoints the download took before it.
 * `+S` cuts S seconds after that write (the reboot's points).
 */
import type { TraceLine } from './vm.js';

/** Where a power cut lands: right after the `ordinal`-th write of class `cls`, plus `delayMs`. */
export interface CutPoint {
  /** `<cls>#<ordinal>` or `<cls>#<ordinal>+<seconds>`: what --points and the PASS lines use. */
  name: string;
  cls: string;
  ordinal: number;
  delayMs: number;
  /** The write's text in the trace the point came from (for the record). */
  label: string;
}

/** The kinds of durable write that change the boot environment. */
const BOOT_ENV_KINDS = ['grubenv', 'ubootenv', 'autoboot'];

/** The stable class of a durable write: its kind and its text without ids, URLs and numbers. */
export function writeClass(l: Pick<TraceLine, 'kind' | 'what'>): string {
  let what = l.what;
  // Boot environment writes say what they set after a colon: the values are not the point's name.
  if (BOOT_ENV_KINDS.includes(l.kind)) what = what.split(':')[0]!;
  what = what
    .toLowerCase()
    .replace(/\S+:\/\/\S*/g, ' ')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ' ')
    .replace(/[\w.-]*\d[\w.-]*|\b[0-9a-f]{8,}\b/g, ' ')
    .replace(/->/g, ' to ')
    .replace(/[^a-z]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return what ? `${l.kind}:${what}` : l.kind;
}

/** The point's name for class `cls`, ordinal `ordinal`, `delayMs` later. */
export function pointName(cls: string, ordinal: number, delayMs = 0): string {
  return `${cls}#${ordinal}${delayMs ? `+${delayMs / 1000}` : ''}`;
}

/** Parses a point name (`grubenv:make-b-primary#1`, `store:transaction-armed-to-rebooting#1+8`). */
export function parsePoint(text: string): CutPoint {
  const m = /^([a-z-]+(?::[a-z-]+)?)#(\d+)(?:\+(\d+))?$/.exec(text.trim());
  if (!m || Number(m[2]) < 1) throw new Error(`a cut point is <kind>:<write>#<ordinal>[+<seconds>] such as grubenv:make-b-primary#1 or store:transaction-armed-to-rebooting#1+8, not ${text}`);
  const delayMs = Number(m[3] ?? 0) * 1000;
  return { name: pointName(m[1]!, Number(m[2]), delayMs), cls: m[1]!, ordinal: Number(m[2]), delayMs, label: m[1]! };
}

/** Numbers the lines of a trace, one after the other, by their class. */
class ClassCounter {
  private counts = new Map<string, number>();

  /** The class of `l` and its ordinal in that class so far. */
  next(l: Pick<TraceLine, 'kind' | 'what'>): { cls: string; ordinal: number } {
    const cls = writeClass(l);
    const ordinal = (this.counts.get(cls) ?? 0) + 1;
    this.counts.set(cls, ordinal);
    return { cls, ordinal };
  }
}

/** Numbers every line of `trace` by its class: the point a cut right after it is. */
export function namedTrace(trace: readonly Pick<TraceLine, 'kind' | 'what'>[]): { cls: string; ordinal: number }[] {
  const counter = new ClassCounter();
  return trace.map((l) => counter.next(l));
}

/** Watches a machine's trace line by line and says when `p`'s write has just completed. */
export class PointWatch {
  private readonly counter = new ClassCounter();
  constructor(readonly point: CutPoint) {}

  /** True for exactly the line that is the point's write. */
  hit(l: Pick<TraceLine, 'kind' | 'what'>): boolean {
    const { cls, ordinal } = this.counter.next(l);
    return cls === this.point.cls && ordinal === this.point.ordinal;
  }
}

/**
 * Picks `count` cut points spread over the golden trace: every boot-environment write, the
 * first of each class, the middle of a class that repeats (the download's checkpoints), the
 * reboot (3, 8 and 20 s after the last write before the trace's longest pause), the commit,
 * then evenly over the rest. A short run (`max`) takes an even stride over them.
 */
export function pickPoints(trace: readonly TraceLine[], count: number, max?: number): CutPoint[] {
  const named = namedTrace(trace);
  const total = new Map<string, number>();
  for (const { cls } of named) total.set(cls, (total.get(cls) ?? 0) + 1);
  const points = new Map<string, CutPoint & { n: number }>();
  const add = (n: number, delayMs = 0) => {
    const l = trace[n - 1];
    const c = named[n - 1];
    if (!l || !c) return;
    const name = pointName(c.cls, c.ordinal, delayMs);
    if (!points.has(name)) points.set(name, { name, cls: c.cls, ordinal: c.ordinal, delayMs, label: `${l.kind} ${l.what}`.slice(0, 70), n });
  };
  trace.forEach((l, i) => BOOT_ENV_KINDS.includes(l.kind) && add(i + 1));
  for (const [cls, c] of total) {
    add(named.findIndex((x) => x.cls === cls) + 1);
    // A class's last ordinal drifts when it repeats (checkpoints): the middle one does not run out.
    const k = c <= 3 ? c : Math.ceil(c / 2);
    add(named.findIndex((x) => x.cls === cls && x.ordinal === k) + 1);
  }
  let gap = 1;
  for (let i = 1; i < trace.length; i++) if (trace[i]!.at - trace[i - 1]!.at > trace[gap]!.at - trace[gap - 1]!.at) gap = i;
  for (const d of [3000, 8000, 20000]) add(gap, d);
  for (let k = 1; points.size < count && k <= count * 2; k++) add(Math.max(1, Math.round((k * trace.length) / (count + 1))));
  const all = [...points.values()].sort((a, b) => a.n - b.n || a.delayMs - b.delayMs).map(({ n: _n, ...p }) => p);
  if (max === undefined || all.length <= max) return all;
  return Array.from({ length: max }, (_, i) => all[Math.floor((i * all.length) / max)]!);
}

/**
 * The full run's points, chosen from an update's trace (51 writes: docs/RELIABILITY.md) over
 * every phase: the first boot's write, the transaction's start and slot B marked bad, the
 * download's fsyncs and checkpoints (early, middle; never the last, whose ordinal depends on
 * the image's size), the end of the install, grubenv's switch to B, the reboot (the write before
 * it, then 3, 15 and 45 s into systemd's shutdown, GRUB and the kernel), and each write of the
 * commit on slot B. The update checks that each is a write of its own trace.
 */
export const FULL_POINTS: readonly string[] = [
  'grubenv:mark-a-good#1',
  'store:start-transaction-in-downloading#1',
  'grubenv:mark-b-bad#1',
  'slot-sync:slot-b-at#1',
  'report-sent:report-sent#1',
  'store:transaction-slot-bytes-durable#1',
  'slot-sync:slot-b-at#4',
  'store:transaction-slot-bytes-durable#4',
  'slot-sync:slot-b-at#8',
  'store:transaction-slot-bytes-durable#8',
  'store:transaction-slot-b-written#1',
  'store:transaction-downloading-to-installed#1',
  'store:transaction-installed-to-armed#1',
  'grubenv:make-b-primary#1',
  'store:transaction-armed-to-rebooting#1',
  'store:transaction-armed-to-rebooting#1+3',
  'store:transaction-armed-to-rebooting#1+15',
  'store:transaction-armed-to-rebooting#1+45',
  'store:transaction-rebooting-to-verifying#1',
  'store:transaction-health-checks#1',
  'store:transaction-verifying-to-committed#1',
  'grubenv:mark-b-good#1',
  'store:transaction-finished-committed#1',
];

/** `--ci`'s few, one per phase: a download checkpoint's fsync, grubenv's switch to B, the reboot. */
export const CI_POINTS: readonly string[] = ['slot-sync:slot-b-at#4', 'grubenv:make-b-primary#1', 'store:transaction-armed-to-rebooting#1+15'];
