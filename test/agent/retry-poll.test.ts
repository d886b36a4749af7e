// The pure policies of the server conversation: when a failed transfer is tried again
// (exponential backoff, full jitter, only for transient errors) and when the daemon checks in.
import { describe, expect, it } from 'vitest';
import { OtaError } from '../../shared/errors.js';
import { MIN_POLL_SECONDS, pollDelayMs, pollIntervalSeconds } from '../../agent/client/poll.js';
import { RETRY_BASE_MS, RETRY_MAX_MS, isRetryable, retryDelay } from '../../agent/download/retry.js';
import '../../agent/errors.js';

const cut = new OtaError('DOWNLOAD_FAILED', 'connection reset');
const almostOne = (): number => 0.999999;

describe('retryDelay', () => {
  it('retries network errors, stalls and 5xx with a cap that doubles per attempt, up to the maximum', () => {
    expect(retryDelay(1, cut, almostOne)).toBe(RETRY_BASE_MS - 1);
    expect(retryDelay(2, cut, almostOne)).toBe(2 * RETRY_BASE_MS - 1);
    expect(retryDelay(4, new OtaError('DOWNLOAD_STALLED', 'no byte'), almostOne)).toBe(8 * RETRY_BASE_MS - 1);
    expect(retryDelay(30, new OtaError('SERVER_FAILED', 'HTTP 503'), almostOne)).toBe(RETRY_MAX_MS - 1);
    expect(retryDelay(10_000, cut, almostOne)).toBe(RETRY_MAX_MS - 1);
  });

  it('draws the wait uniformly below the cap (full jitter)', () => {
    expect(retryDelay(3, cut, () => 0)).toBe(0);
    expect(retryDelay(3, cut, () => 0.5)).toBe(2 * RETRY_BASE_MS);
    for (let i = 0; i < 200; i++) {
      const d = retryDelay(5, cut)!;
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(16 * RETRY_BASE_MS);
    }
  });

  it('never retries a refusal, a changed or oversize bundle, a stop, or a programming error', () => {
    for (const code of ['DOWNLOAD_REFUSED', 'BUNDLE_CHANGED', 'BUNDLE_TOO_LARGE', 'PAYLOAD_HASH_MISMATCH', 'DOWNLOAD_RETRIES_EXHAUSTED', 'AGENT_STOPPED']) {
      const err = new OtaError(code, code);
      expect(isRetryable(err), code).toBe(false);
      expect(retryDelay(1, err), code).toBeNull();
    }
    expect(retryDelay(1, new Error('bug'))).toBeNull();
  });
});

describe('poll interval', () => {
  it('takes the server\'s interval when it is shorter than the config\'s, never longer, never below 1 s', () => {
    expect(pollIntervalSeconds(3600)).toBe(3600);
    expect(pollIntervalSeconds(3600, 300)).toBe(300);
    expect(pollIntervalSeconds(60, 300)).toBe(60);
    expect(pollIntervalSeconds(60, 0)).toBe(60);
    expect(pollIntervalSeconds(60, Number.NaN)).toBe(60);
    expect(pollIntervalSeconds(60, 0.01)).toBe(MIN_POLL_SECONDS);
  });

  it('adds +-20 % jitter', () => {
    expect(pollDelayMs(10, undefined, () => 0)).toBe(8000);
    expect(pollDelayMs(10, undefined, () => 0.5)).toBe(10_000);
    expect(pollDelayMs(10, 5, almostOne)).toBe(6000);
    for (let i = 0; i < 200; i++) {
      const d = pollDelayMs(1);
      expect(d).toBeGreaterThanOrEqual(800);
      expect(d).toBeLessThanOrEqual(1200);
    }
  });

  it('takes the jitter from the config (server.pollJitter)', () => {
    expect(pollDelayMs(10, undefined, () => 0, 0.5)).toBe(5000);
    expect(pollDelayMs(10, undefined, almostOne, 0.5)).toBe(15_000);
    expect(pollDelayMs(10, undefined, () => 0, 0)).toBe(10_000);
  });
});
