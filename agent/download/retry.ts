/**
 * When to try a failed transfer again, as a pure function of the attempt number and the error,
 * in the manner of got's own `calculateDelay`: exponential backoff with full jitter (a random
 * wait between 0 and the exponential cap), so a fleet that lost its server does not come back
 * in lockstep. No I/O here: the download and the daemon loop apply it, tests call it directly.
 */
import { isOtaError } from '../../shared/errors.js';

/** The cap of the first retry's wait. */
export const RETRY_BASE_MS = 1000;

/** No wait is longer than this, however many attempts failed in a row. */
export const RETRY_MAX_MS = 120_000;

/**
 * True for what a later attempt can cure: network errors, timeouts, stalls, 5xx and 429
 * answers (the catalogue marks them `transient`). Not for a refusal, a changed or oversize
 * bundle, or the agent being stopped.
 */
export function isRetryable(error: unknown): boolean {
  return isOtaError(error) && error.kind === 'transient' && error.code !== 'AGENT_STOPPED';
}

/**
 * Milliseconds to wait before retry `attempt` (1 for the first retry after a failure) of a
 * transfer that failed with `error`, or null when it must not be retried. `random` returns a
 * number in [0, 1), like Math.random.
 */
export function retryDelay(attempt: number, error: unknown, random: () => number = Math.random): number | null {
  if (!isRetryable(error)) return null;
  const cap = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}
