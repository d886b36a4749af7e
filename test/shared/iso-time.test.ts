// isoTime formats as toISOString does (without the time zone toISOString sets up first, which
// the start-up benchmark measures: docs/PERFORMANCE.md).
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../shared/iso-time.js';
import { seededRandom } from '../../shared/seeded-random.js';

describe('isoTime', () => {
  it('is toISOString for the epoch, leap days, the ends of the four-digit years and random times', () => {
    const times = [0, -1, Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(2000, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999), new Date('0000-01-01T00:00:00.000Z').getTime(), Date.UTC(10000, 0, 1), -62198755200001];
    const rnd = seededRandom(7);
    for (let i = 0; i < 2000; i++) times.push(Math.floor((rnd() - 0.5) * 2 * 8.64e15 * 0.03));
    for (const t of times) expect(isoTime(t), String(t)).toBe(new Date(t).toISOString());
    const d = new Date(Date.UTC(2026, 11, 5, 14, 41, 27, 472));
    expect(isoTime(d)).toBe('2026-12-05T14:41:27.472Z');
  });

  it('throws for an invalid time, as toISOString does', () => {
    expect(() => isoTime(new Date('no date'))).toThrow(RangeError);
  });
});
