/**
 * Enrollment: the device registers its id and compatible string with an enrollment token and
 * gets its own token and the server's public key, stored in the enrollment file. A device
 * provisioned with the server's key (config `server.serverKey`) checks that the server it
 * reached holds that key before storing anything.
 */
import { OtaError } from '../../shared/errors.js';
import { loadKeyring, parsePublicKeys } from '../../shared/signing.js';
import type { AgentConfig } from '../config/types.js';
import { postJson } from './api.js';
import { writeEnrollment, type Enrollment } from './enrollment.js';
import { isoTime } from '../../shared/iso-time.js';

/** What `ota-agent enroll` asks for. */
export interface EnrollRequest {
  /** The server's base URL. */
  readonly server: string;
  /** An enrollment token (or an ops token, to re-enroll with `replace`). */
  readonly token: string;
  readonly channel?: string;
  /** Re-enroll an id the server knows already (needs an ops token): its old token is revoked. */
  readonly replace?: boolean;
  readonly timeoutMs: number;
}

/** What enrollment stored. */
export interface EnrollResult {
  readonly enrollment: Enrollment;
  /** The enrollment file. */
  readonly path: string;
  /** The server key's fingerprint. */
  readonly fingerprint: string;
}

function field(body: Record<string, unknown>, key: string, url: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '') throw new OtaError('SERVER_BAD_ANSWER', `enrollment at ${url}: the answer has no "${key}"`);
  return v;
}

/** Enrolls the configured device at `req.server` and stores the result. */
export async function enroll(config: AgentConfig, req: EnrollRequest): Promise<EnrollResult> {
  const url = req.server.replace(/\/+$/, '');
  const { id, compatible, product } = config.device;
  const answer = await postJson(
    { url, token: req.token },
    '/v1/devices/enroll',
    { id, compatible, ...(product ? { product } : {}), ...(req.channel ? { channel: req.channel } : {}), ...(req.replace ? { replace: true } : {}) },
    {
      timeoutMs: req.timeoutMs,
      refine: (status, code, text) => {
        if (status === 409 && code === 'DEVICE_EXISTS') {
          return new OtaError('ENROLL_DEVICE_EXISTS', `device ${id} is enrolled at ${url} already; re-enroll it with --replace and an ops token (${text})`);
        }
        if (status === 401 || status === 403) {
          const hint = req.replace ? 're-enrolling with --replace needs an ops token' : 'use a valid enrollment token (ota-server token create --role enroll)';
          return new OtaError('SERVER_AUTH_FAILED', `${url} refused the token: ${hint} (${text})`);
        }
        return undefined;
      },
    },
  );
  const body = (answer.body ?? {}) as Record<string, unknown>;
  const serverKey = field(body, 'serverKey', url);
  const keys = await parsePublicKeys(Buffer.from(serverKey, 'utf8'), `server key from ${url}`);
  const fingerprint = keys[0]?.getFingerprint().toUpperCase();
  if (!fingerprint) throw new OtaError('SERVER_BAD_ANSWER', `enrollment at ${url}: the answer's serverKey holds no key`);
  const pinned = config.server?.serverKey;
  if (pinned) {
    const expected = await (await loadKeyring([pinned])).fingerprints();
    if (!expected.includes(fingerprint)) {
      throw new OtaError(
        'SERVER_KEY_MISMATCH',
        `${url} signs with key ${fingerprint}, but server.serverKey (${pinned}) holds ${expected.join(', ')}; the server enrolled the device, nothing was stored: check server.url`,
      );
    }
  }
  const enrollment: Enrollment = {
    id: field(body, 'id', url),
    url,
    token: field(body, 'token', url),
    serverKey,
    channel: field(body, 'channel', url),
    compatible: field(body, 'compatible', url),
    enrolled: isoTime(),
  };
  const path = await writeEnrollment(config.dataDir, enrollment);
  return { enrollment, path, fingerprint };
}
