/**
 * A time as ISO 8601 in UTC, `2026-12-05T14:41:27.472Z`: what `Date.prototype.toISOString`
 * returns, built from the UTC getters.
 *
 * Why not toISOString itself: in Node 20's V8 it works out the local time offset first, even
 * for this UTC format, and the first such call of a process sets up ICU's time zone (tzset,
 * /etc/localtime, ICU's zone data paged in from the node binary): 13 to 16 ms after a reboot,
 * on an install's way to its first payload byte (docs/PERFORMANCE.md, start-up). The UTC
 * getters need no time zone.
 */
const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** `time` (a Date or milliseconds since the epoch; now by default) as toISOString formats it, for years 0 to 9999. */
export function isoTime(time: Date | number = Date.now()): string {
  const d = typeof time === 'number' ? new Date(time) : time;
  if (Number.isNaN(d.getTime())) throw new RangeError('Invalid time value');
  const year = d.getUTCFullYear();
  // Outside four digits toISOString writes a signed six-digit year: leave those to it.
  if (year < 0 || year > 9999) return d.toISOString();
  return `${pad(year, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}
