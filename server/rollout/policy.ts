/**
 * The rollout policy as pure functions, apart from any database: who is in which phase, who is
 * offered a rollout's release, when a phase advances, when a rollout pauses itself. The store
 * (server/db/rollouts.ts) gathers the facts and applies the decisions in one transaction; an
 * engine other than SQLite reuses these functions as they are.
 */
import { seededRandom } from '../../shared/seeded-random.js';

/** A phase: a number of devices, or a percentage of the rollout's devices (cumulative ladder). */
export type Phase = { count: number } | { percent: number };

/** The default ladder: 1 % → 10 % → 50 % → 100 %. */
export const DEFAULT_PHASES: readonly Phase[] = [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }];

/** Rollout states. `completed` still offers its release to stragglers and late joiners. */
export type RolloutState = 'running' | 'paused' | 'completed' | 'aborted' | 'superseded';

/** Device statuses within a rollout; `success` and `failure` are final and count once. */
export type MemberStatus = 'waiting' | 'offered' | 'installing' | 'success' | 'failure';

/** What evaluation needs of a rollout. */
export interface RolloutRules {
  state: RolloutState;
  /** Index of the last open phase. */
  phase: number;
  phaseOpened: Date;
  phases: readonly Phase[];
  /** Share of the open phases' devices that must succeed before the next phase opens. */
  successShare: number;
  /** Seconds a phase stays open at least before the next one opens. */
  soakSeconds: number;
  /** Pause when this many failures (beyond those acknowledged at a resume) are reached. */
  pauseFailures: number | null;
  /** Pause when this share of the open phases' devices failed (beyond those acknowledged). */
  pauseFailureShare: number | null;
  acknowledgedFailures: number;
}

/** Per-phase counts of members, as derived from the per-device rows. */
export interface PhaseCounts {
  members: number;
  success: number;
  failure: number;
}

/** What to do with a rollout after its counts changed or time passed. */
export type Evaluation = { type: 'none' } | { type: 'advance'; phase: number } | { type: 'complete' } | { type: 'pause'; reason: string };

/** Cumulative device counts at the end of each phase, for a rollout of `total` devices. */
export function phaseEnds(phases: readonly Phase[], total: number): number[] {
  let sum = 0;
  return phases.map((p, i) => {
    if (i === phases.length - 1) return total;
    if ('count' in p) sum += p.count;
    // A percentage of the whole: at least one device, so the first phase is never empty.
    else sum = Math.max(sum, total === 0 ? 0 : Math.max(1, Math.ceil((p.percent * total) / 100)));
    return Math.min(sum, total);
  });
}

/** Why a list of phases is not usable, or null. */
export function phasesProblem(phases: readonly Phase[]): string | null {
  if (phases.length === 0 || phases.length > 100) return 'phases must list 1 to 100 phases';
  let lastPercent = 0;
  for (const [i, p] of phases.entries()) {
    if ('percent' in p) {
      if (!(p.percent > 0 && p.percent <= 100)) return `phase ${i + 1}: percent must be above 0 and at most 100`;
      if (p.percent < lastPercent) return `phase ${i + 1}: percentages are cumulative and must not go down`;
      lastPercent = p.percent;
    } else if (!Number.isInteger(p.count) || p.count < 1) return `phase ${i + 1}: count must be a whole number of devices, at least 1`;
  }
  const last = phases.at(-1)!;
  if (!('percent' in last) || last.percent !== 100) {
    // A ladder that does not end at 100 % would leave devices outside every phase forever.
    return 'the last phase must be { "percent": 100 }';
  }
  return null;
}

/** A seeded PRNG: the same seed gives the same shuffle on any engine. */
export { seededRandom };

/** Membership fixed at the start: a seeded shuffle of the devices, cut into the phases. */
export function assignPhases(devices: readonly string[], phases: readonly Phase[], seed: number): { device: string; phase: number; position: number }[] {
  // Sorted first, so the result depends on the seed and the set, not on the query's order.
  const order = [...devices].sort();
  const rnd = seededRandom(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const ends = phaseEnds(phases, order.length);
  return order.map((device, position) => ({ device, position, phase: ends.findIndex((end) => position < end) }));
}

/** True when a member of `phase` may be offered the rollout's release now. */
export function offered(state: RolloutState, openPhase: number, memberPhase: number, status: MemberStatus): boolean {
  if (state !== 'running' && state !== 'completed') return false;
  return memberPhase <= openPhase && status !== 'failure';
}

function sum(counts: readonly PhaseCounts[], upTo: number, key: keyof PhaseCounts): number {
  let n = 0;
  for (let i = 0; i <= upTo && i < counts.length; i++) n += counts[i]![key];
  return n;
}

/**
 * The decision for a running rollout: pause when the failures reach a threshold (checked
 * first: a bad release stops before anything else happens), else open the next phase when the
 * open phases' success share is reached and the soak time has passed, else complete when the
 * last phase reached it.
 */
export function evaluate(r: RolloutRules, counts: readonly PhaseCounts[], now: Date): Evaluation {
  if (r.state !== 'running') return { type: 'none' };
  const members = sum(counts, r.phase, 'members');
  const failures = sum(counts, r.phase, 'failure') - r.acknowledgedFailures;
  if (failures > 0) {
    if (r.pauseFailures !== null && failures >= r.pauseFailures) {
      return { type: 'pause', reason: `${failures} failure(s) reached the threshold of ${r.pauseFailures}` };
    }
    if (r.pauseFailureShare !== null && members > 0 && failures / members >= r.pauseFailureShare) {
      return { type: 'pause', reason: `${failures} failure(s) of ${members} device(s) reached the threshold share of ${r.pauseFailureShare}` };
    }
  }
  // No device yet: nothing has proven the release; devices that appear join this phase.
  if (members === 0) return { type: 'none' };
  const success = sum(counts, r.phase, 'success');
  if (success < Math.ceil(r.successShare * members - 1e-9)) return { type: 'none' };
  if (now.getTime() - r.phaseOpened.getTime() < r.soakSeconds * 1000) return { type: 'none' };
  if (r.phase + 1 < r.phases.length) return { type: 'advance', phase: r.phase + 1 };
  return { type: 'complete' };
}

/** What a rollout targets: besides its product, a channel, tags (all required), attribute values. */
export interface Target {
  channel: string | null;
  tags: readonly string[];
  attributes: Readonly<Record<string, string>>;
}

/** What targeting needs of a device. */
export interface TargetFacts {
  product: string | null;
  channel: string;
  compatible: string;
  tags: ReadonlySet<string>;
  attributes: Readonly<Record<string, string>>;
}

/** True when a device is in a rollout's target (its product unknown counts as any product). */
export function inTarget(t: Target & { product: string; compatible: ReadonlySet<string> }, d: TargetFacts): boolean {
  if (d.product !== null && d.product !== t.product) return false;
  if (!t.compatible.has(d.compatible)) return false;
  if (t.channel !== null && t.channel !== d.channel) return false;
  for (const tag of t.tags) if (!d.tags.has(tag)) return false;
  for (const [k, v] of Object.entries(t.attributes)) if (d.attributes[k] !== v) return false;
  return true;
}

/** The status a report moves a member to, or null when the report says nothing new. */
export function statusFromReport(current: MemberStatus, r: { state: string; outcome?: 'success' | 'failure' }): MemberStatus | null {
  // Final statuses are final: each device counts once, whatever arrives after.
  if (current === 'success' || current === 'failure') return null;
  if (r.outcome === 'success') return 'success';
  if (r.outcome === 'failure') return 'failure';
  return current === 'installing' ? null : 'installing';
}
