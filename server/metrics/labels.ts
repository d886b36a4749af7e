/**
 * Label values derived from device input, bounded: a reason is free text up to 1 KiB, and a
 * label value per distinct text would grow Prometheus without end.
 */

/**
 * The class of a report's reason: its first word-like part (`health-check`, `boot-failed`,
 * `technician`), keeping an error code after a colon (`install:SLOT_ACTIVE`,
 * `directive-refused:ROLLBACK_UNAVAILABLE`); at most 64 characters of [a-z0-9_.:-].
 */
export function reasonLabel(reason: string | undefined | null): string {
  if (reason === undefined || reason === null || reason.trim() === '') return 'none';
  const m = /^\s*([A-Za-z0-9_.-]+)(?::\s*([A-Z][A-Z0-9_]{2,}))?/.exec(reason);
  if (!m) return 'other';
  const head = m[1]!.toLowerCase();
  return (m[2] ? `${head}:${m[2]}` : head).slice(0, 64);
}
