/**
 * The enrollment file `<dataDir>/server.json`: what `ota-agent enroll` got from the server
 * (its URL, the device's own token, the server's public key, the channel). It holds a secret,
 * so it is mode 0600, and it is replaced power-safely: written to a temporary file, fsynced,
 * renamed over the old one, and the directory fsynced, as one durable write.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { parseStrictJson } from '../../shared/strict-json.js';
import { durablyAsync } from '../infra/durable.js';
import { replaceFileDurably } from '../../shared/fsync.js';

/** The file's name inside dataDir. */
export const ENROLLMENT_FILE = 'server.json';

/** What enrollment stored. */
export interface Enrollment {
  /** The device id the server enrolled (the token only works for it). */
  readonly id: string;
  readonly url: string;
  readonly token: string;
  /** The server's public key, armored. */
  readonly serverKey: string;
  readonly channel: string;
  readonly compatible: string;
  /** When it was enrolled (ISO-8601). */
  readonly enrolled: string;
}

const FIELDS = ['id', 'url', 'token', 'serverKey', 'channel', 'compatible', 'enrolled'] as const;

/** The enrollment file's path for `dataDir`. */
export function enrollmentPath(dataDir: string): string {
  return join(dataDir, ENROLLMENT_FILE);
}

/** Reads the enrollment, or undefined when the device was never enrolled. */
export async function readEnrollment(dataDir: string): Promise<Enrollment | undefined> {
  const path = enrollmentPath(dataDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OtaError('ENROLLMENT_FAILED', `enrollment ${path}: cannot be read (${errorMessage(cause)})`, { cause });
  }
  let raw: unknown;
  try {
    raw = parseStrictJson(text, `enrollment ${path}`);
  } catch (cause) {
    throw new OtaError('ENROLLMENT_FAILED', `enrollment ${path}: not JSON (${errorMessage(cause)})`, { cause });
  }
  const obj = raw as Record<string, unknown> | null;
  for (const f of FIELDS) {
    if (!obj || typeof obj[f] !== 'string' || obj[f] === '') throw new OtaError('ENROLLMENT_FAILED', `enrollment ${path}: "${f}" is missing or not a string`);
  }
  const e = obj as unknown as Enrollment;
  return { id: e.id, url: e.url, token: e.token, serverKey: e.serverKey, channel: e.channel, compatible: e.compatible, enrolled: e.enrolled };
}

/** Replaces the enrollment file power-safely; returns its path. */
export async function writeEnrollment(dataDir: string, e: Enrollment): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = enrollmentPath(dataDir);
  const tmp = `${path}.new`;
  const bytes = Buffer.from(`${JSON.stringify(e, null, 2)}\n`, 'utf8');
  await durablyAsync('enrollment', `enrollment of ${e.id} at ${e.url}`, async () => {
    try {
      await replaceFileDurably(path, bytes, 0o600, tmp);
    } catch (cause) {
      throw new OtaError('ENROLLMENT_FAILED', `enrollment ${path}: cannot be written (${errorMessage(cause)})`, { cause });
    }
  });
  return path;
}
