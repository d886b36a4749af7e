/**
 * Maintenance windows (DESIGN §11): when a device may install, reboot and commit. The server
 * sends a device the windows of its groups in the signed check-in answer; the device decides
 * with its own clock, so a window holds even when the server is out of reach. Pure functions:
 * the clock is an argument.
 */

/** Days of the week as windows name them. */
export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
/** A day of the week. */
export type Day = (typeof DAYS)[number];

/** A weekly window: from `start` (local HH:MM) on each of `days`, for `durationMinutes`, in `timeZone` (IANA). */
export interface MaintenanceWindow {
  days: Day[];
  start: string;
  durationMinutes: number;
  timeZone: string;
}

const WEEK = 7 * 24 * 60;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** True when `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Minutes since Sunday 00:00 of the wall clock in `tz` at `now`. */
export function minuteOfWeek(now: Date, tz: string): number {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(now).map((p) => [p.type, p.value]));
  const day = DAYS.indexOf(String(parts.weekday).toLowerCase().slice(0, 3) as Day);
  return day * 24 * 60 + Number(parts.hour) * 60 + Number(parts.minute);
}

/** Minutes of `HH:MM`, or NaN when it is not a time of day. */
export function minutesOf(hhmm: string): number {
  const m = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(hhmm);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}

/** Why a window is not well formed, or null. */
export function windowProblem(w: MaintenanceWindow): string | null {
  if (!Array.isArray(w.days) || w.days.length === 0 || w.days.some((d) => !DAYS.includes(d))) return `days must list some of ${DAYS.join(', ')}`;
  if (Number.isNaN(minutesOf(w.start))) return `start "${w.start}" must be a local time HH:MM`;
  if (!Number.isInteger(w.durationMinutes) || w.durationMinutes < 1 || w.durationMinutes > 24 * 60) return 'durationMinutes must be 1 to 1440';
  if (!isTimeZone(w.timeZone)) return `timeZone "${w.timeZone}" is not an IANA time zone this system knows`;
  return null;
}

/** Where `now` stands against the windows: open, or minutes until the next one opens. */
export type WindowState = { open: true } | { open: false; opensInMinutes: number };

/**
 * Open when `now` falls in any window; no windows means always open. Times are wall-clock
 * minutes of each window's zone, so a window keeps its local hours across daylight saving.
 */
export function windowState(windows: readonly MaintenanceWindow[], now: Date): WindowState {
  if (windows.length === 0) return { open: true };
  let next = Infinity;
  for (const w of windows) {
    const at = minuteOfWeek(now, w.timeZone);
    for (const d of w.days) {
      const start = DAYS.indexOf(d) * 24 * 60 + minutesOf(w.start);
      const since = (((at - start) % WEEK) + WEEK) % WEEK;
      if (since < w.durationMinutes) return { open: true };
      next = Math.min(next, WEEK - since);
    }
  }
  return { open: false, opensInMinutes: next };
}
