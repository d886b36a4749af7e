// The transition table and the start-up recovery switch, as pure functions: the graph is
// complete and always ends, and every (state found, boot facts) pair resumes where it must.
import { describe, expect, it } from 'vitest';
import { TRANSITIONS, nextState, transitionLimit, type Outcome } from '../../agent/machine/table.js';
import { STATES, FINAL_STATES, isFinal, type State } from '../../agent/machine/states.js';
import { resumePoint, STEP_ROLLBACK_ENV, type BootFacts } from '../../agent/machine/resume.js';
import type { Transaction } from '../../agent/store/types.js';

function tx(state: State, extra: Partial<Transaction> = {}): Transaction {
  return {
    id: 't', kind: 'install', origin: 'local', directiveId: null, version: '1.0.0', state, prevState: null,
    sourceSlot: 'A', targetSlot: 'B', source: '/b.otab', bundleSha256: null, bundleSize: null, manifest: null, manifestSig: null,
    allowDowngrade: false, payloadsOffset: null, bytesRead: 0, bytesTotal: null, resumeIndex: null, resumeDataOffset: null,
    durableOffset: 0, slotDigest: null, step: null, transitions: 3, reason: null, createdAt: '', updatedAt: '', finishedAt: null,
    ...extra,
  };
}

const env = (vars: Record<string, string>): Record<string, string> => ({ ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3', ...vars });
const on = (booted: 'A' | 'B', vars: Record<string, string> = {}): BootFacts => ({ booted, env: env(vars) });

describe('transition table', () => {
  it('has a row for every state, and only known targets', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...STATES].sort());
    for (const [, row] of Object.entries(TRANSITIONS)) {
      for (const next of Object.values(row)) expect([...STATES, 'await-boot', 'end']).toContain(next);
    }
  });

  it('gives every state before the end a fatal and a loop exit, and final states only "done"', () => {
    for (const s of STATES) {
      if (isFinal(s)) expect(TRANSITIONS[s]).toEqual({ done: 'end' });
      else {
        expect(TRANSITIONS[s].fatal, s).toBeDefined();
        expect(TRANSITIONS[s].loop, s).toBeDefined();
      }
    }
  });

  it('never fails a transaction running on the new slot without rolling back first', () => {
    for (const o of Object.keys(TRANSITIONS.verifying) as Outcome[]) expect(['committed', 'rolling-back']).toContain(TRANSITIONS.verifying[o]);
  });

  it('reaches a final state from every state', () => {
    const reaches = (s: State, seen = new Set<State>()): boolean => {
      if (isFinal(s)) return true;
      seen.add(s);
      return Object.values(TRANSITIONS[s]).some((n) => n !== 'await-boot' && n !== 'end' && !seen.has(n) && reaches(n, seen));
    };
    for (const s of STATES) expect(reaches(s), s).toBe(true);
    expect(FINAL_STATES).toEqual(['committed', 'rolled-back', 'failed']);
  });

  it('follows the install order of DESIGN §6', () => {
    const chain: State[] = ['downloading'];
    const outcomes: Outcome[] = ['written', 'verified', 'armed'];
    for (const o of outcomes) chain.push(nextState(chain.at(-1)!, o) as State);
    expect(chain).toEqual(['downloading', 'installed', 'armed', 'rebooting']);
    expect(nextState('rebooting', 'reboot-requested')).toBe('await-boot');
    expect(nextState('verifying', 'healthy')).toBe('committed');
    expect(nextState('verifying', 'unhealthy')).toBe('rolling-back');
    expect(nextState('rolling-back', 'on-restore-slot')).toBe('rolled-back');
    expect(() => nextState('committed', 'healthy')).toThrow(/not allowed/);
  });

  it('gives rolling back twice the transition budget', () => {
    expect(transitionLimit('verifying', 50)).toBe(50);
    expect(transitionLimit('rolling-back', 50)).toBe(100);
  });
});

describe('start-up recovery', () => {
  const cases: Array<[string, Transaction, BootFacts, { state: State; reason?: string }]> = [
    ['downloading on the old slot: download again', tx('downloading'), on('A', { B_OK: '0' }), { state: 'downloading' }],
    ['downloading but running the target: never write it', tx('downloading'), on('B'), { state: 'failed', reason: 'install:SLOT_ACTIVE' }],
    ['installed: read back again', tx('installed'), on('A', { B_OK: '0' }), { state: 'installed' }],
    ['armed, env not written yet', tx('armed'), on('A', { B_OK: '0', B_TRY: '3' }), { state: 'armed' }],
    ['armed, env written, no boot yet', tx('armed'), on('A', { ORDER: 'B A' }), { state: 'armed' }],
    ['armed, power cut booted the target', tx('armed'), on('B', { ORDER: 'B A', B_TRY: '1' }), { state: 'verifying' }],
    ['rebooting, killed before the reboot', tx('rebooting'), on('A', { ORDER: 'B A' }), { state: 'rebooting' }],
    ['rebooting, up on the target', tx('rebooting'), on('B', { ORDER: 'B A', B_TRY: '1' }), { state: 'verifying' }],
    ['rebooting, GRUB fell back after MAX_TRIES', tx('rebooting'), on('A', { ORDER: 'B A', B_TRY: '3', A_TRY: '1' }), { state: 'rolling-back', reason: 'boot-failed' }],
    ['armed, GRUB fell back', tx('armed'), on('A', { ORDER: 'B A', B_TRY: '1' }), { state: 'rolling-back', reason: 'boot-failed' }],
    ['verifying, still on the target', tx('verifying'), on('B', { ORDER: 'B A', B_TRY: '2' }), { state: 'verifying' }],
    ['verifying, the target went down and GRUB fell back', tx('verifying'), on('A', { ORDER: 'B A', B_TRY: '3' }), { state: 'rolling-back', reason: 'boot-failed' }],
    ['committed, finish it', tx('committed'), on('B'), { state: 'committed' }],
    ['rolling-back on the restore slot', tx('rolling-back'), on('A', { ORDER: 'A B', B_OK: '0' }), { state: 'rolling-back' }],
    ['rolling-back still on the bad slot', tx('rolling-back'), on('B', { ORDER: 'B A', B_TRY: '1' }), { state: 'rolling-back' }],
    ['rolled-back, finish it', tx('rolled-back'), on('A'), { state: 'rolled-back' }],
    ['failed, finish it', tx('failed'), on('A'), { state: 'failed' }],
    [
      'technician rollback, GRUB tried the other slot and came back',
      tx('rolling-back', { kind: 'rollback', sourceSlot: 'B', targetSlot: 'A', step: STEP_ROLLBACK_ENV }),
      on('B', { ORDER: 'A B', A_TRY: '3' }),
      { state: 'failed', reason: 'boot-failed' },
    ],
    [
      'technician rollback, env written, no reboot yet',
      tx('rolling-back', { kind: 'rollback', sourceSlot: 'B', targetSlot: 'A', step: STEP_ROLLBACK_ENV }),
      on('B', { ORDER: 'A B', A_TRY: '0' }),
      { state: 'rolling-back' },
    ],
    [
      'technician rollback, env not written (old tries do not count)',
      tx('rolling-back', { kind: 'rollback', sourceSlot: 'B', targetSlot: 'A' }),
      on('B', { ORDER: 'B A', A_TRY: '2' }),
      { state: 'rolling-back' },
    ],
  ];
  for (const [name, t, boot, expected] of cases) {
    it(name, () => {
      expect(resumePoint(t, boot)).toEqual(expected);
    });
  }
});
