/** The pure rollout policy: phase sizes, seeded membership, offers, advance, pause. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PHASES,
  assignPhases,
  evaluate,
  inTarget,
  offered,
  phaseEnds,
  phasesProblem,
  statusFromReport,
  type PhaseCounts,
  type RolloutRules,
} from '../../server/rollout/policy.js';

const rules = (over: Partial<RolloutRules> = {}): RolloutRules => ({
  state: 'running',
  phase: 0,
  phaseOpened: new Date('2026-01-01T00:00:00Z'),
  phases: DEFAULT_PHASES,
  successShare: 0.9,
  soakSeconds: 0,
  pauseFailures: null,
  pauseFailureShare: 0.1,
  acknowledgedFailures: 0,
  ...over,
});
const at = new Date('2026-01-01T01:00:00Z');
const c = (members: number, success = 0, failure = 0): PhaseCounts => ({ members, success, failure });

describe('phases', () => {
  it('cuts the default ladder 1/10/50/100 % cumulatively, never an empty first phase', () => {
    expect(phaseEnds(DEFAULT_PHASES, 200)).toEqual([2, 20, 100, 200]);
    expect(phaseEnds(DEFAULT_PHASES, 5)).toEqual([1, 1, 3, 5]);
    expect(phaseEnds([{ count: 3 }, { count: 10 }, { percent: 100 }], 8)).toEqual([3, 8, 8]);
  });

  it('refuses ladders that do not end at 100 % or go down', () => {
    expect(phasesProblem(DEFAULT_PHASES)).toBeNull();
    expect(phasesProblem([{ percent: 50 }])).toMatch(/last phase/);
    expect(phasesProblem([{ percent: 50 }, { percent: 10 }, { percent: 100 }])).toMatch(/must not go down/);
    expect(phasesProblem([{ count: 0 }, { percent: 100 }])).toMatch(/count/);
  });

  it('assigns members by a seeded shuffle: same seed same phases, whatever the input order; not creation order', () => {
    const ids = Array.from({ length: 100 }, (_, i) => `dev-${String(i).padStart(3, '0')}`);
    const a = assignPhases(ids, DEFAULT_PHASES, 42);
    const b = assignPhases([...ids].reverse(), DEFAULT_PHASES, 42);
    expect(a).toEqual(b);
    expect(a.filter((m) => m.phase === 0)).toHaveLength(1);
    expect(a.filter((m) => m.phase <= 1)).toHaveLength(10);
    expect(a.filter((m) => m.phase <= 2)).toHaveLength(50);
    expect(a.slice(0, 10).map((m) => m.device)).not.toEqual(ids.slice(0, 10));
    expect(assignPhases(ids, DEFAULT_PHASES, 43).map((m) => m.device)).not.toEqual(a.map((m) => m.device));
  });
});

describe('offers', () => {
  it('offers only to members of open phases of a running or completed rollout, never after a failure', () => {
    expect(offered('running', 1, 0, 'waiting')).toBe(true);
    expect(offered('running', 1, 1, 'offered')).toBe(true);
    expect(offered('running', 1, 2, 'waiting')).toBe(false);
    expect(offered('paused', 3, 0, 'waiting')).toBe(false);
    expect(offered('aborted', 3, 0, 'waiting')).toBe(false);
    expect(offered('completed', 3, 3, 'waiting')).toBe(true);
    expect(offered('running', 1, 0, 'failure')).toBe(false);
  });

  it('targets by product, compatible, channel, all tags and attribute values', () => {
    const t = { product: 'charger', compatible: new Set(['evc']), channel: 'stable', tags: ['site-lyon'], attributes: { hardware: 'rev-c' } };
    const d = { product: 'charger', channel: 'stable', compatible: 'evc', tags: new Set(['site-lyon', 'x']), attributes: { hardware: 'rev-c', site: 'lyon' } };
    expect(inTarget(t, d)).toBe(true);
    expect(inTarget(t, { ...d, product: null })).toBe(true);
    expect(inTarget(t, { ...d, product: 'gateway' })).toBe(false);
    expect(inTarget(t, { ...d, compatible: 'x86-gw' })).toBe(false);
    expect(inTarget(t, { ...d, channel: 'beta' })).toBe(false);
    expect(inTarget(t, { ...d, tags: new Set(['x']) })).toBe(false);
    expect(inTarget(t, { ...d, attributes: { hardware: 'rev-b' } })).toBe(false);
  });

  it('moves a member once to a final status', () => {
    expect(statusFromReport('offered', { state: 'downloading' })).toBe('installing');
    expect(statusFromReport('installing', { state: 'armed' })).toBeNull();
    expect(statusFromReport('installing', { state: 'committed', outcome: 'success' })).toBe('success');
    expect(statusFromReport('success', { state: 'failed', outcome: 'failure' })).toBeNull();
    expect(statusFromReport('failure', { state: 'committed', outcome: 'success' })).toBeNull();
  });
});

describe('evaluate', () => {
  it('advances when the open phases reach the success share, after the soak time', () => {
    expect(evaluate(rules(), [c(2, 1), c(18), c(80), c(100)], at)).toEqual({ type: 'none' });
    expect(evaluate(rules(), [c(2, 2), c(18), c(80), c(100)], at)).toEqual({ type: 'advance', phase: 1 });
    expect(evaluate(rules({ phase: 1 }), [c(2, 2), c(18, 15), c(80), c(100)], at)).toEqual({ type: 'none' });
    expect(evaluate(rules({ phase: 1 }), [c(2, 2), c(18, 16), c(80), c(100)], at)).toEqual({ type: 'advance', phase: 2 });
    expect(evaluate(rules({ soakSeconds: 7200 }), [c(2, 2), c(18), c(80), c(100)], at)).toEqual({ type: 'none' });
    expect(evaluate(rules({ phase: 3 }), [c(2, 2), c(18, 18), c(80, 80), c(100, 90)], at)).toEqual({ type: 'complete' });
    // An empty target proves nothing: the first phase stays the open one.
    expect(evaluate(rules(), [c(0), c(0), c(0), c(0)], at)).toEqual({ type: 'none' });
  });

  it('pauses at a failure count or share, before anything else; acknowledged failures no longer count', () => {
    expect(evaluate(rules(), [c(2, 1, 1), c(18), c(80), c(100)], at)).toMatchObject({ type: 'pause' });
    expect(evaluate(rules({ phase: 2, pauseFailureShare: null, pauseFailures: 3 }), [c(2, 2), c(18, 16, 1), c(80, 72, 1), c(100)], at)).toEqual({ type: 'advance', phase: 3 });
    expect(evaluate(rules({ phase: 2, pauseFailureShare: null, pauseFailures: 3 }), [c(2, 2), c(18, 16, 1), c(80, 70, 2), c(100)], at)).toMatchObject({ type: 'pause', reason: expect.stringContaining('3 failure(s)') });
    expect(evaluate(rules({ phase: 2, pauseFailureShare: null, pauseFailures: 3, acknowledgedFailures: 3 }), [c(2, 2), c(18, 16, 1), c(80, 72, 2), c(100)], at)).toEqual({ type: 'advance', phase: 3 });
    // Failures in phases not yet open are impossible; paused rollouts are left alone.
    expect(evaluate(rules({ state: 'paused' }), [c(2, 2), c(18), c(80), c(100)], at)).toEqual({ type: 'none' });
  });
});
