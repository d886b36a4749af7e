/**
 * The agent–server wire contract (DESIGN §4, §8): check-in requests, the signed answer
 * envelope and its directives, and reports. Both sides import these types and the envelope
 * functions, so the bytes one signs are exactly the bytes the other verifies.
 */
import { randomBytes } from 'node:crypto';
import type { PrivateKey } from 'openpgp';
import { OtaError, defineErrors } from './errors.js';
import { parseStrictJson } from './strict-json.js';
import { signDetached, verifyDetached, type Keyring } from './signing.js';
import type { MaintenanceWindow } from './windows.js';

/** Errors of the agent–server protocol. */
export const ProtocolErrors = defineErrors({
  ANSWER_MALFORMED: { status: 502, kind: 'transient', hint: 'The check-in answer is not a signed envelope: check the server URL and version.' },
  ANSWER_WRONG_DEVICE: { status: 502, kind: 'transient', hint: 'The answer names another device: the server or a proxy mixed up answers.' },
  ANSWER_WRONG_NONCE: { status: 502, kind: 'transient', hint: 'The answer does not echo this check-in\'s nonce: it is a replay or a stale cache.' },
  ANSWER_EXPIRED: { status: 502, kind: 'transient', hint: 'The answer has expired: check the clocks of device and server, or a proxy that delays answers.' },
});

/** Device transaction states as reported (DESIGN §6), plus `idle` between transactions. */
export type DeviceState =
  | 'idle'
  | 'downloading'
  | 'installed'
  | 'armed'
  | 'rebooting'
  | 'verifying'
  | 'committed'
  | 'rolling-back'
  | 'rolled-back'
  | 'failed';

/** Body of `POST /v1/devices/:id/checkin`. */
export interface CheckinRequest {
  /** 32 random bytes, hex; the answer must echo it. */
  nonce: string;
  /** Slot the device booted from. */
  slot: string;
  /** Highest committed release version, or null on a device that never committed one. */
  version: string | null;
  state: DeviceState;
  /** Transaction in flight, if any. */
  transaction?: { id: string; version: string; state: DeviceState };
  /**
   * What the device says of itself for grouping (hardware, site, agentVersion, slot.A, slot.B,
   * ...): short strings, at most 32; ops filter and target rollouts by them.
   */
  attributes?: Record<string, string>;
}

/** A release the server tells a device to install. */
export interface UpdateRelease {
  version: string;
  /** sha256 of the whole bundle file. */
  sha256: string;
  /** Size of the whole bundle file in bytes: the agent never reads more. */
  size: number;
  /** Absolute URL of the bundle (GET with Range). */
  url: string;
  /** manifest.json bytes, base64, as signed by a release key. */
  manifest: string;
  /** manifest.json.sig bytes, base64. */
  manifestSignature: string;
}

/** What the server tells a device to do. */
export type Directive =
  | { type: 'none' }
  | { type: 'update'; release: UpdateRelease }
  | { type: 'rollback'; id: string };

/** The signed content of a check-in answer. */
export interface CheckinAnswer {
  device: string;
  nonce: string;
  issued: string;
  expires: string;
  directive: Directive;
  /** Seconds until the next check-in the server would like. */
  pollInterval?: number;
  /**
   * The maintenance windows of the device's groups: it installs, reboots and commits a server
   * update only inside one (its own clock decides). Absent: no windows, any time.
   */
  windows?: MaintenanceWindow[];
}

/** Envelope on the wire: the exact answer bytes and a detached OpenPGP signature over them. */
export interface SignedEnvelope {
  /** base64 of the UTF-8 JSON bytes of a CheckinAnswer. */
  payload: string;
  /** base64 of a binary detached OpenPGP signature over those bytes. */
  signature: string;
}

/** Outcome reasons of DESIGN §6. */
export type FailureReason = `health-check:${string}` | 'boot-failed' | 'timeout' | 'technician' | 'loop' | `install:${string}` | `download:${string}`;

/** Body of `POST /v1/devices/:id/reports`; `id` de-duplicates retries. */
export interface Report {
  /** Unique per report; the server ignores a second report with the same id. */
  id: string;
  transaction: string;
  version: string;
  state: DeviceState;
  /** Set on the final report of a transaction. */
  outcome?: 'success' | 'failure';
  reason?: string;
  progress?: { bytes: number; total: number };
  /** Health-check results and other detail, free-form JSON. */
  details?: Record<string, unknown>;
  /** When the device made the report (ISO-8601). */
  at: string;
}

/** A fresh check-in nonce. */
export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

/** Signs an answer with the server key. */
export async function signAnswer(answer: CheckinAnswer, key: PrivateKey): Promise<SignedEnvelope> {
  const bytes = Buffer.from(JSON.stringify(answer), 'utf8');
  return { payload: bytes.toString('base64'), signature: (await signDetached(bytes, key)).toString('base64') };
}

/**
 * Verifies an answer envelope: server signature, device id, nonce and expiry.
 * Any failure throws; the caller carries on with what it has.
 */
export async function verifyAnswer(
  envelope: unknown,
  keyring: Keyring,
  expect: { device: string; nonce: string; now?: Date },
): Promise<CheckinAnswer> {
  const env = envelope as Partial<SignedEnvelope> | null;
  if (!env || typeof env.payload !== 'string' || typeof env.signature !== 'string') {
    throw new OtaError('ANSWER_MALFORMED', 'check-in answer: not a signed envelope {payload, signature}');
  }
  const bytes = Buffer.from(env.payload, 'base64');
  const sig = Buffer.from(env.signature, 'base64');
  const now = expect.now ?? new Date();
  await verifyDetached(bytes, sig, keyring, 'check-in answer', now);
  let answer: CheckinAnswer;
  try {
    answer = parseStrictJson(bytes.toString('utf8'), 'check-in answer') as CheckinAnswer;
  } catch (cause) {
    throw new OtaError('ANSWER_MALFORMED', 'check-in answer: the signed payload is not JSON', { cause });
  }
  if (!answer || typeof answer !== 'object' || typeof answer.directive !== 'object' || answer.directive === null) {
    throw new OtaError('ANSWER_MALFORMED', 'check-in answer: no directive');
  }
  if (answer.device !== expect.device) {
    throw new OtaError('ANSWER_WRONG_DEVICE', `check-in answer: addressed to device "${String(answer.device)}", not "${expect.device}"`);
  }
  if (answer.nonce !== expect.nonce) throw new OtaError('ANSWER_WRONG_NONCE', 'check-in answer: the nonce is not the one this check-in sent');
  const expires = Date.parse(answer.expires);
  if (Number.isNaN(expires) || expires <= now.getTime()) {
    throw new OtaError('ANSWER_EXPIRED', `check-in answer: expired at ${String(answer.expires)}`);
  }
  return answer;
}
