/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and tells where the time went: self time per
 * function (with its file), and the share of idle, GC and native "program" time. What the
 * benchmarks print when a goal is missed, and what docs/PERFORMANCE.md quotes.
 */
import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a process spent its time. */
export interface ProfileSummary {
  /** Wall time covered by the profile, ms. */
  totalMs: number;
  /** Time the thread waited (event loop idle: I/O, other processes), ms. */
  idleMs: number;
  /** Garbage collection, ms. */
  gcMs: number;
  /** Self time per function, largest first: `name (file:line)` and ms. */
  top: { frame: string; ms: number }[];
  /** The run cut into equal stretches: how busy the thread was in each, and on what most. */
  timeline: { fromMs: number; busyPct: number; top: string }[];
}

function frameName(n: ProfileNode): string {
  const f = n.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const file = f.url.replace(/^file:\/\//, '');
  const where = file.includes('node_modules/') ? file.slice(file.lastIndexOf('node_modules/') + 13) : file.startsWith('node:') ? file : basename(file);
  return `${name} (${where}:${f.lineNumber + 1})`;
}

/** Summarizes one profile's self time, keeping the `topN` largest frames, and a timeline of `bins` stretches. */
export function summarize(profile: CpuProfile, topN = 12, bins = 10): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const stretch = Array.from({ length: bins }, () => ({ busy: 0, all: 0, frames: new Map<string, number>() }));
  let idle = 0;
  let gc = 0;
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    at += ms;
    if (!node) continue;
    const name = frameName(node);
    const b = stretch[Math.min(bins - 1, Math.floor((at / totalMs) * bins))]!;
    b.all += ms;
    if (name === '(idle)') idle += ms;
    else {
      b.busy += ms;
      b.frames.set(name, (b.frames.get(name) ?? 0) + ms);
    }
    if (name === '(garbage collector)') gc += ms;
    self.set(name, (self.get(name) ?? 0) + ms);
  }
  const timeline = stretch.map((b, k) => {
    const [frame = '-', ms = 0] = [...b.frames.entries()].sort((x, y) => y[1] - x[1])[0] ?? [];
    return { fromMs: (k * totalMs) / bins, busyPct: b.all > 0 ? (100 * b.busy) / b.all : 0, top: b.busy > 0 ? `${frame} ${((100 * ms) / b.busy).toFixed(0)} % of busy` : '-' };
  });
  const top = [...self.entries()]
    .filter(([f]) => f !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([frame, ms]) => ({ frame, ms }));
  return { totalMs, idleMs: idle, gcMs: gc, top, timeline };
}

/** Summarizes the (first) .cpuprofile file found in `dir`. */
export async function summarizeDir(dir: string, topN = 12): Promise<ProfileSummary> {
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`${dir}: no .cpuprofile written`);
  return summarize(JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile, topN);
}

/** The summary as indented text lines. */
export function formatSummary(s: ProfileSummary): string {
  const busy = s.totalMs - s.idleMs;
  const pct = (ms: number): string => `${((100 * ms) / s.totalMs).toFixed(1)} %`;
  return [
    `  profiled ${s.totalMs.toFixed(0)} ms: main thread busy ${busy.toFixed(0)} ms (${pct(busy)}), idle ${s.idleMs.toFixed(0)} ms (${pct(s.idleMs)}), GC ${s.gcMs.toFixed(0)} ms`,
    '  self time, largest first:',
    ...s.top.map((t) => `    ${t.ms.toFixed(0).padStart(6)} ms  ${pct(t.ms).padStart(7)}  ${t.frame}`),
    '  timeline (from ms: main thread busy, its largest item):',
    ...s.timeline.map((t) => `    ${t.fromMs.toFixed(0).padStart(6)} ms: ${t.busyPct.toFixed(0).padStart(3)} % busy; ${t.top}`),
  ].join('\n');
}

/** CLI: `node dist/scripts/bench/profile.js DIR|FILE.cpuprofile [TOP]` prints the summary. */
if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write('Usage: node dist/scripts/bench/profile.js DIR|FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const topN = Number(process.argv[3] ?? 12);
  const s = target.endsWith('.cpuprofile') ? summarize(JSON.parse(await readFile(target, 'utf8')) as CpuProfile, topN) : await summarizeDir(target, topN);
  process.stdout.write(`${formatSummary(s)}\n`);
}
