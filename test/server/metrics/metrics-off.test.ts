/** `metrics: off`: no instrumentation and no /metrics; it does not go with a scrape setting. */
import { describe, expect, it } from 'vitest';
import { isOtaError } from '../../../shared/errors.js';
import { bearer, enroll, releaseKey, testConfig, testServer } from '../helpers.js';

describe('metrics: off', () => {
  it('serves no /metrics and leaves the store untimed, while the API works', async () => {
    const s = await testServer([await releaseKey()], { metrics: 'off' });
    try {
      expect(s.app.config.metrics).toBe(false);
      await enroll(s, 'gw-1');
      const res = await s.app.inject({ method: 'GET', url: '/metrics', headers: bearer('x'.repeat(32)) });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: 'METRICS_DISABLED' });
      // No store histogram was fed: nothing wraps the store's methods.
      expect(await s.app.metrics.text()).not.toMatch(/otaab_store_operation_duration_seconds_count\{[^}]*\} [1-9]/);
    } finally {
      await s.close();
    }
  });

  it('refuses metricsToken or metricsListen with metrics off, and a value that is not on or off', () => {
    const bad = (over: Record<string, unknown>) => {
      try {
        testConfig('/tmp/x', over);
      } catch (err) {
        return isOtaError(err) ? err.code : String(err);
      }
      return 'accepted';
    };
    expect(bad({ metrics: false, metricsToken: 'scrape-token-0123456789' })).toBe('SERVER_CONFIG_INVALID');
    expect(bad({ metrics: 'off', metricsListen: '127.0.0.1:9464' })).toBe('SERVER_CONFIG_INVALID');
    expect(bad({ metrics: 'maybe' })).toBe('SERVER_CONFIG_INVALID');
    expect(bad({ metrics: true })).toBe('accepted');
  });
});
