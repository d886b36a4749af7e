/**
 * When the daemon checks in next, as a pure function. The config's `pollIntervalSeconds` is
 * the device owner's ceiling (a metered 3G link); the server's `pollInterval` from a verified
 * answer may shorten it (during a rollout), never lengthen it, and never below one second.
 * Jitter (±20 % by default, config `server.pollJitter`) spreads a fleet that booted together
 * (after a power failure on a site), so it does not check in in lockstep.
 */

/** The shortest interval the server can ask for. */
export const MIN_POLL_SECONDS = 1;

/** The seconds between check-ins before jitter. */
export function pollIntervalSeconds(configSeconds: number, serverSeconds?: number): number {
  if (serverSeconds === undefined || !Number.isFinite(serverSeconds) || serverSeconds <= 0) return configSeconds;
  return Math.min(configSeconds, Math.max(MIN_POLL_SECONDS, serverSeconds));
}

/** The default jitter: ±20 %. */
export const DEFAULT_JITTER = 0.2;

/** Milliseconds until the next check-in: the interval with ±`jitter` (config `server.pollJitter`; `random` in [0, 1)). */
export function pollDelayMs(configSeconds: number, serverSeconds?: number, random: () => number = Math.random, jitter = DEFAULT_JITTER): number {
  return Math.round(pollIntervalSeconds(configSeconds, serverSeconds) * 1000 * (1 - jitter + 2 * jitter * random()));
}
