/**
 * Power-cut scenarios: drive one update through real agent processes and the simulator, with
 * a cut (OTA_CRASH_AT_STATE or OTA_CRASH_AFTER_WRITE: the agent SIGKILLs itself) in one run;
 * after the cut, optionally boot through GRUB (a power cut is a reboot), then let the device
 * come to rest and check where it landed.
 */
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { bootUntilUp, bootedSlot, readEnv } from '../../../scripts/sim/simulator.js';
import { sha256Hex } from '../../../shared/hashing.js';
import { agent, inFlight, withStore, type AgentRun } from './proc.js';
import type { Rig } from './rig.js';

/** Which runs get which environment: every run until the cut, or only the run numbered `run`. */
export type CutPlan = { env: Record<string, string>; run?: number };

/** What a driven update did. */
export interface Driven {
  runs: AgentRun[];
  /** Index of the run that was cut, if any. */
  cutRun?: number;
}

/**
 * Runs `ota-agent install <bundle>`, then the daemon after every reboot (booting through GRUB),
 * until no transaction is in flight. Run 0 is the install; each later run is a daemon.
 * `powerCut`: the cut also takes the system down, so the device boots before the next run.
 */
export async function drive(rig: Rig, bundle: string, plan: CutPlan | undefined, powerCut: boolean, envPerRun?: (i: number) => Record<string, string>): Promise<Driven> {
  const runs: AgentRun[] = [];
  let cutRun: number | undefined;
  const envFor = (i: number): Record<string, string> => {
    const extra = envPerRun?.(i) ?? {};
    if (!plan || cutRun !== undefined) return extra;
    if (plan.run === undefined || plan.run === i) return { ...extra, ...plan.env };
    return extra;
  };
  let run = await agent(rig, ['install', bundle], envFor(0));
  for (let i = 0; ; ) {
    runs.push(run);
    if (runs.length > 25) throw new Error('the device did not come to rest in 25 agent runs');
    if (run.signal === 'SIGKILL' && !run.stopped && cutRun === undefined) {
      cutRun = i;
      if (powerCut) await bootUntilUp(rig.dev);
    } else if (run.rebooted) {
      await bootUntilUp(rig.dev);
    } else if (!inFlight(rig)) {
      break;
    } else if (run.code !== 0 && run.code !== 1) {
      throw new Error(`ota-agent exited ${run.code ?? run.signal}: ${run.stderr}`);
    }
    i++;
    run = await agent(rig, ['daemon'], envFor(i));
  }
  return cutRun === undefined ? { runs } : { runs, cutRun };
}

/** How an update must end. */
export type Ending =
  | { state: 'committed' }
  | { state: 'rolled-back'; reason: string }
  | { state: 'failed'; reason: string };

/** Checks the device at rest: the transaction's end, the boot, grubenv, the reports, and slot A's bytes. */
export async function expectAtRest(rig: Rig, ending: Ending, slotABefore: string): Promise<void> {
  const t = withStore(rig, (s) => {
    expect(s.current()).toBeUndefined();
    const tx = s.transactions(1)[0]!;
    // Exactly one final outcome is reported, whatever was cut and replayed.
    const finals = s.reports(tx.id).filter((r) => r.body.outcome !== undefined);
    expect(finals).toHaveLength(1);
    expect(finals[0]!.body).toMatchObject({ state: ending.state, outcome: ending.state === 'committed' ? 'success' : 'failure' });
    return tx;
  });
  expect(t.state).toBe(ending.state);
  if (ending.state !== 'committed') expect(t.reason).toBe(ending.reason);
  const env = await readEnv(rig.dev.grubenvPath);
  if (ending.state === 'committed') {
    expect(await bootedSlot(rig.dev)).toBe('B');
    expect(env).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0' });
  } else {
    expect(await bootedSlot(rig.dev)).toBe('A');
    expect(env).toMatchObject({ B_OK: '0', A_OK: '1' });
  }
  // A ran the system when the update started, and is what a failure returns to: never written.
  expect(sha256Hex(await readFile(rig.dev.slots.A))).toBe(slotABefore);
}
