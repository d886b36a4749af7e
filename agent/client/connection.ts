/**
 * The server connection the daemon and `ota-agent check` use, from two places: the config's
 * `server` section and the enrollment file. Key by key (url, token, serverKey), the config
 * wins when it sets one, so a device provisioned with the server's key keeps that key whatever
 * enrollment stored; the rest comes from `ota-agent enroll`.
 */
import { OtaError, errorMessage } from '../../shared/errors.js';
import { keyringFromArmored, loadKeyring, type Keyring } from '../../shared/signing.js';
import { SERVER_DEFAULTS } from '../config/fields.js';
import type { AgentConfig } from '../config/types.js';
import { enrollmentPath, readEnrollment } from './enrollment.js';

/** The server's public key: a file named by the config, or the armored key enrollment stored. */
export type ServerKeySource = { readonly path: string } | { readonly armored: string; readonly from: string };

/** What the device knows about its server; pieces may be missing until it is enrolled. */
export interface ServerConnection {
  readonly url?: string;
  readonly token?: string;
  readonly serverKey?: ServerKeySource;
  /** The channel enrollment put the device in (informative; the server decides). */
  readonly channel?: string;
  /** The longest time between two check-ins. */
  readonly pollIntervalSeconds: number;
  /** Why the enrollment file's token cannot be used, when it cannot. */
  readonly problem?: string;
}

/** A connection with everything a check-in needs. */
export interface CompleteConnection extends ServerConnection {
  readonly url: string;
  readonly token: string;
  readonly serverKey: ServerKeySource;
}

/** The device's connection, or undefined when neither the config nor an enrollment names a server. */
export async function loadConnection(config: AgentConfig): Promise<ServerConnection | undefined> {
  const enrolled = await readEnrollment(config.dataDir);
  const c = config.server;
  if (!c && !enrolled) return undefined;
  // A token is only good for the id it was issued to: after a change of device.id, enroll again.
  const usable = enrolled && enrolled.id === config.device.id ? enrolled : undefined;
  const problem =
    enrolled && !usable ? `${enrollmentPath(config.dataDir)} enrolled device "${enrolled.id}", but device.id is "${config.device.id}": enroll again` : undefined;
  const url = c?.url ?? usable?.url;
  const token = c?.token ?? usable?.token;
  const serverKey: ServerKeySource | undefined = c?.serverKey
    ? { path: c.serverKey }
    : usable
      ? { armored: usable.serverKey, from: enrollmentPath(config.dataDir) }
      : undefined;
  return {
    pollIntervalSeconds: c?.pollIntervalSeconds ?? SERVER_DEFAULTS.pollIntervalSeconds,
    ...(url !== undefined ? { url } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(serverKey ? { serverKey } : {}),
    ...(usable ? { channel: usable.channel } : {}),
    ...(problem ? { problem } : {}),
  };
}

/** The connection when it is complete; otherwise SERVER_NOT_ENROLLED naming what is missing. */
export function requireConnection(conn: ServerConnection | undefined): CompleteConnection {
  const missing = [!conn?.url && 'the server URL', !conn?.token && 'the device token', !conn?.serverKey && "the server's key"].filter(Boolean);
  if (conn && missing.length === 0) return conn as CompleteConnection;
  const why = conn?.problem ? `; ${conn.problem}` : '';
  throw new OtaError(
    'SERVER_NOT_ENROLLED',
    `no ${missing.join(', ')} for the update server${why}; run 'ota-agent enroll --server URL --token TOKEN' or set them in the config's server section`,
  );
}

/** The keyring that verifies the server's check-in answers. */
export async function serverKeyring(key: ServerKeySource): Promise<Keyring> {
  if ('path' in key) return loadKeyring([key.path]);
  try {
    return await keyringFromArmored([key.armored]);
  } catch (cause) {
    throw new OtaError('ENROLLMENT_FAILED', `enrollment ${key.from}: its serverKey is not an OpenPGP public key (${errorMessage(cause)})`, { cause });
  }
}

/** The Authorization header for `url` when it is on the server's own origin (the token goes nowhere else). */
export function authFor(conn: ServerConnection | undefined, url: string): Record<string, string> {
  if (!conn?.url || !conn.token) return {};
  try {
    return new URL(url).origin === new URL(conn.url).origin ? { authorization: `Bearer ${conn.token}` } : {};
  } catch {
    return {};
  }
}
