/** Range and If-Range planning (RFC 9110 §14), without a server. */
import { describe, expect, it } from 'vitest';
import { ifRangeHolds, planRange } from '../../server/http/range.js';

describe('planRange over 1000 bytes', () => {
  it.each([
    [undefined, { type: 'full' }],
    ['bytes=0-99', { type: 'partial', start: 0, end: 99 }],
    ['bytes=900-', { type: 'partial', start: 900, end: 999 }],
    ['bytes=-100', { type: 'partial', start: 900, end: 999 }],
    ['bytes=-5000', { type: 'partial', start: 0, end: 999 }],
    ['bytes=990-5000', { type: 'partial', start: 990, end: 999 }],
    ['bytes=999-999', { type: 'partial', start: 999, end: 999 }],
    ['BYTES = 10 - 20', { type: 'partial', start: 10, end: 20 }],
    ['bytes=1000-', { type: 'unsatisfiable' }],
    ['bytes=1000-2000', { type: 'unsatisfiable' }],
    ['bytes=-0', { type: 'unsatisfiable' }],
    // Ignored (whole bundle): malformed, inverted, multi-range, other units.
    ['bytes=20-10', { type: 'full' }],
    ['bytes=0-1,5-6', { type: 'full' }],
    ['bytes=-', { type: 'full' }],
    ['bytes=a-b', { type: 'full' }],
    ['items=0-1', { type: 'full' }],
  ])('%s', (header, plan) => {
    expect(planRange(header, 1000)).toEqual(plan);
  });
});

describe('ifRangeHolds', () => {
  const etag = '"abc"';
  it('holds without If-Range or with our exact ETag', () => {
    expect(ifRangeHolds(undefined, etag)).toBe(true);
    expect(ifRangeHolds('"abc"', etag)).toBe(true);
  });
  it('fails for another ETag, a weak one, or a date', () => {
    expect(ifRangeHolds('"abd"', etag)).toBe(false);
    expect(ifRangeHolds('W/"abc"', etag)).toBe(false);
    expect(ifRangeHolds('Sat, 21 Nov 2026 10:00:00 GMT', etag)).toBe(false);
  });
});
