/**
 * The maintenance windows of the last verified check-in answer, kept in `<dataDir>/windows.json`
 * so that a restarted agent (or one that cannot reach its server) still holds to them. Written
 * atomically (temporary file, fsync, rename) and only when they changed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFileDurably } from '../../shared/fsync.js';
import type { MaintenanceWindow } from '../../shared/windows.js';

/** The file inside the data directory. */
export const WINDOWS_FILE = 'windows.json';

/** The windows the device holds to: none recorded means none sent, any time is fine. */
export async function readWindows(dataDir: string): Promise<MaintenanceWindow[]> {
  try {
    const parsed = JSON.parse(await readFile(join(dataDir, WINDOWS_FILE), 'utf8')) as { windows?: unknown };
    return Array.isArray(parsed.windows) ? (parsed.windows as MaintenanceWindow[]) : [];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    // A damaged file: hold to nothing rather than to garbage; the next answer rewrites it.
    return [];
  }
}

/** Records the windows of a verified answer; returns true when they changed. */
export async function saveWindows(dataDir: string, windows: readonly MaintenanceWindow[]): Promise<boolean> {
  const text = `${JSON.stringify({ windows })}\n`;
  const file = join(dataDir, WINDOWS_FILE);
  const old = await readFile(file, 'utf8').catch(() => (windows.length === 0 ? text : ''));
  if (old === text) return false;
  await replaceFileDurably(file, text, 0o644);
  return true;
}
