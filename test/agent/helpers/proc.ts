/**
 * Runs the compiled agent (`node dist/agent/cli.js`, built by `npm run build`) as a real
 * process against a rig, the way systemd and a technician would, and plays the rest of the
 * device: when the agent asks for a reboot, the "power" goes (the process is killed) and the
 * simulator boots the device through real GRUB before the daemon starts again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { bootUntilUp } from '../../../scripts/sim/simulator.js';
import { Store } from '../../../agent/store/store.js';
import { ROOT } from '../../helpers/cli.js';
import { rebootCount, type Rig } from './rig.js';

/** The compiled agent. */
export const AGENT_CLI = join(ROOT, 'dist', 'agent', 'cli.js');

/** How one agent process ended. */
export interface AgentRun {
  code: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  /** The agent asked for a reboot during this run. */
  rebooted: boolean;
  /** The harness stopped it (after its reboot request): its signal is not a power-cut hook's. */
  stopped: boolean;
}

/**
 * Runs `ota-agent <args> --config <rig>` until it exits, or until it asked for a reboot, at
 * which point it is killed as the reboot would. `env` adds variables (e.g. OTA_CRASH_AT_STATE).
 */
export async function agent(rig: Rig, args: string[], env: Record<string, string> = {}): Promise<AgentRun> {
  const before = await rebootCount(rig);
  const child = execa('node', [AGENT_CLI, ...args, '--config', rig.configPath], {
    reject: false,
    stdin: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    extendEnv: false,
    // Never escalate to SIGKILL behind our back: a SIGKILL must mean the agent's own cut.
    forceKillAfterDelay: false,
  });
  let exited = false;
  void child.finally(() => {
    exited = true;
  });
  let rebooted = false;
  let stopped = false;
  // Only the daemon waits for the system to go down after asking for a reboot; it is stopped
  // the way systemd stops it. Technician commands exit by themselves once it was requested.
  while (!exited && args[0] === 'daemon') {
    if ((await rebootCount(rig)) > before) {
      rebooted = true;
      stopped = true;
      child.kill('SIGTERM');
      break;
    }
    await sleep(25);
  }
  const r = await child;
  rebooted ||= (await rebootCount(rig)) > before;
  return { code: r.exitCode, signal: r.signal ?? undefined, stdout: String(r.stdout), stderr: String(r.stderr), rebooted, stopped };
}

/** Boots the device through GRUB (until a slot comes up), then runs the daemon once. */
export async function bootAndDaemon(rig: Rig, env: Record<string, string> = {}): Promise<AgentRun> {
  await bootUntilUp(rig.dev);
  return agent(rig, ['daemon'], env);
}

/**
 * Lets the device run to rest: daemon, and a boot whenever it asked for a reboot, until no
 * transaction is in flight. Returns the runs.
 */
export async function settle(rig: Rig, maxRuns = 12): Promise<AgentRun[]> {
  const runs: AgentRun[] = [];
  for (let k = 0; k < maxRuns; k++) {
    const run = await agent(rig, ['daemon']);
    runs.push(run);
    if (run.rebooted) {
      await bootUntilUp(rig.dev);
      continue;
    }
    if (run.code !== 0) throw new Error(`ota-agent daemon exited ${run.code ?? run.signal}: ${run.stderr}`);
    if (!inFlight(rig)) return runs;
  }
  throw new Error(`the device did not come to rest in ${maxRuns} daemon runs`);
}

/** Reads the rig's store from the test (the agent is not running). */
export function withStore<T>(rig: Rig, fn: (s: Store) => T): T {
  const s = Store.open(rig.config.dataDir as string);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

/** True when a transaction is in flight. */
export function inFlight(rig: Rig): boolean {
  return withStore(rig, (s) => s.current() !== undefined);
}

/** `ota-agent <cmd> --json` parsed. */
export async function json<T = Record<string, unknown>>(rig: Rig, cmd: 'status' | 'history'): Promise<T> {
  const r = await agent(rig, [cmd, '--json']);
  if (r.code !== 0) throw new Error(`ota-agent ${cmd} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
