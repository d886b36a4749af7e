// For every persisted state, the agent is SIGKILLed right after persisting it (real SIGKILL,
// OTA_CRASH_AT_STATE), then restarted: either as a crashed process (the daemon starts again)
// or as a power cut (the device boots through GRUB first). Each ends committed or cleanly
// rolled back (or, for a bad bundle, failed with its slot disarmed), slot A never written.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { bootUntilUp } from '../../scripts/sim/simulator.js';
import { sha256Hex } from '../../shared/hashing.js';
import { STATES, type State } from '../../agent/machine/states.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { drive, expectAtRest, type Ending } from '../agent/helpers/cut.js';
import { AGENT_CLI, agent, bootAndDaemon, settle, withStore } from '../agent/helpers/proc.js';
import { makeRig, releaseImage, type Rig } from '../agent/helpers/rig.js';

const rigs: Rig[] = [];
afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

type Release = 'healthy' | 'unhealthy' | 'tampered';

/** The release whose update passes through `state`, and how that update ends. */
const PLAN: Record<State, { release: Release; ending: Ending }> = {
  downloading: { release: 'healthy', ending: { state: 'committed' } },
  installed: { release: 'healthy', ending: { state: 'committed' } },
  armed: { release: 'healthy', ending: { state: 'committed' } },
  rebooting: { release: 'healthy', ending: { state: 'committed' } },
  verifying: { release: 'healthy', ending: { state: 'committed' } },
  committed: { release: 'healthy', ending: { state: 'committed' } },
  'rolling-back': { release: 'unhealthy', ending: { state: 'rolled-back', reason: 'health-check:app' } },
  'rolled-back': { release: 'unhealthy', ending: { state: 'rolled-back', reason: 'health-check:app' } },
  failed: { release: 'tampered', ending: { state: 'failed', reason: 'install:PAYLOAD_HASH_MISMATCH' } },
};

async function release(rig: Rig, kind: Release): Promise<string> {
  const { path } = await imageBundle(rig.dir, rig.key, releaseImage('1.0.0', kind !== 'unhealthy'), { version: '1.0.0' });
  if (kind !== 'tampered') return path;
  const bytes = await readFile(path);
  const at = bytes.length - 1024 - 4000;
  bytes[at] = bytes[at]! ^ 0x40;
  const out = join(rig.dir, 'tampered.otab');
  await writeFile(out, bytes);
  return out;
}

describe('SIGKILL in every persisted state', { timeout: 180_000 }, () => {
  it('covers every state of the machine', () => {
    expect(Object.keys(PLAN).sort()).toEqual([...STATES].sort());
  });

  for (const state of STATES) {
    for (const powerCut of [false, true]) {
      it(`killed in ${state}, then ${powerCut ? 'power cut: boot through GRUB' : 'process restarted'} → ${PLAN[state].ending.state}`, async () => {
        const rig = await makeRig();
        rigs.push(rig);
        expect((await bootAndDaemon(rig)).code).toBe(0);
        const slotA = sha256Hex(await readFile(rig.dev.slots.A));
        const bundle = await release(rig, PLAN[state].release);
        const driven = await drive(rig, bundle, { env: { OTA_CRASH_AT_STATE: state } }, powerCut);
        expect(driven.cutRun, 'the agent was cut').toBeDefined();
        const cut = driven.runs[driven.cutRun!]!;
        expect(cut.signal).toBe('SIGKILL');
        // The state was persisted before the cut, and the transaction resumed from it.
        withStore(rig, (s) => {
          const tx = s.transactions(1)[0]!;
          const entered = s.events({ transactionId: tx.id }).filter((e) => e.type === 'transition').map((e) => e.toState);
          const at = entered.indexOf(state);
          expect(at, `entered ${entered.join(',')}`).toBeGreaterThanOrEqual(0);
          const story = `runs: ${driven.runs.map((r) => r.signal ?? r.code).join(',')}; cut in run ${driven.cutRun}; transitions: ${s
            .events({ transactionId: tx.id })
            .filter((e) => e.type === 'transition')
            .map((e) => `${e.fromState}->${e.toState}${e.details?.resumed ? '(resumed)' : ''}`)
            .join(' ')}`;
          expect(s.events({ transactionId: tx.id }).find((e) => e.type === 'transition' && (e.details as { resumed?: string } | null)?.resumed === state), `resumed from the cut state; ${story}`).toBeDefined();
        });
        await expectAtRest(rig, PLAN[state].ending, slotA);
      });
    }
  }

  it('killed from outside (kill -9) while its health checks run, then powered up again → committed', { timeout: 300_000 }, async () => {
    // A slow check keeps the daemon in verifying long enough to be killed by another process.
    const rig = await makeRig({ config: { healthChecks: [{ name: 'slow', command: ['sh', '-c', 'sleep 3; exit 0'] }] } });
    rigs.push(rig);
    expect((await bootAndDaemon(rig)).code).toBe(0);
    const slotA = sha256Hex(await readFile(rig.dev.slots.A));
    const bundle = await release(rig, 'healthy');
    expect((await agent(rig, ['install', bundle])).rebooted).toBe(true);
    await bootUntilUp(rig.dev);
    const daemon = execa('node', [AGENT_CLI, 'daemon', '--config', rig.configPath], { reject: false, stdin: 'ignore' });
    let state: string | undefined;
    let exited = false;
    void daemon.finally(() => {
      exited = true;
    });
    // No timing assumption: poll until the daemon is in verifying (its check takes 3 s).
    while (state !== 'verifying' && !exited) {
      await sleep(25);
      state = withStore(rig, (s) => s.current()?.state);
    }
    expect(state).toBe('verifying');
    daemon.kill('SIGKILL');
    expect((await daemon).signal).toBe('SIGKILL');
    await bootUntilUp(rig.dev);
    await settle(rig);
    await expectAtRest(rig, { state: 'committed' }, slotA);
  });
});
