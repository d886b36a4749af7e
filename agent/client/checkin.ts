/**
 * One check-in: the device's state and a fresh nonce go up; the answer comes back as a signed
 * envelope and is believed only if the server key signed it, it names this device, echoes this
 * nonce and has not expired (shared/protocol.ts `verifyAnswer`), and its directive has the
 * shape of the contract. An answer failing any of that is *refused*, not an error of the
 * transport: the caller logs it and carries on with what it has.
 */
import { OtaError, isOtaError } from '../../shared/errors.js';
import { newNonce, verifyAnswer, type CheckinAnswer, type CheckinRequest, type DeviceState, type Directive } from '../../shared/protocol.js';
import type { Keyring } from '../../shared/signing.js';
import { isVersion } from '../../shared/version.js';
import { windowProblem, type MaintenanceWindow } from '../../shared/windows.js';
import type { Transaction } from '../store/types.js';
import { postJson, type ApiOptions, type ApiTarget } from './api.js';
import '../errors.js';

/** A check-in's result: a verified answer, or the reason it was refused. */
export type CheckinResult =
  | { readonly ok: true; readonly request: CheckinRequest; readonly answer: CheckinAnswer }
  | { readonly ok: false; readonly request: CheckinRequest; readonly refused: OtaError };

/** What the device reports about itself. */
export interface DeviceReport {
  readonly slot: string;
  readonly version: string | null;
  readonly transaction?: Transaction;
}

/** The check-in body (without its nonce) for the device's state. */
export function checkinState(d: DeviceReport): Omit<CheckinRequest, 'nonce'> {
  const tx = d.transaction;
  const state: DeviceState = tx ? tx.state : 'idle';
  return {
    slot: d.slot,
    version: d.version !== null && isVersion(d.version) ? d.version : null,
    state,
    // The server takes a transaction with a release version only; a rollback to a slot whose
    // version is unknown is reported by its state alone.
    ...(tx && isVersion(tx.version) ? { transaction: { id: tx.id, version: tx.version, state: tx.state } } : {}),
  };
}

const isText = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** Throws ANSWER_MALFORMED unless `d` is a directive of the contract. */
export function checkDirective(d: unknown): Directive {
  const dir = d as { type?: unknown; id?: unknown; release?: Record<string, unknown> } | null;
  if (dir?.type === 'none') return { type: 'none' };
  if (dir?.type === 'rollback' && isText(dir.id)) return { type: 'rollback', id: dir.id };
  const r = dir?.release;
  if (
    dir?.type === 'update' &&
    r &&
    isText(r.version) &&
    isText(r.url) &&
    /^https?:\/\//.test(r.url) &&
    typeof r.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(r.sha256) &&
    typeof r.size === 'number' &&
    Number.isSafeInteger(r.size) &&
    r.size > 0 &&
    isText(r.manifest) &&
    isText(r.manifestSignature)
  ) {
    return {
      type: 'update',
      release: { version: r.version, url: r.url, sha256: r.sha256, size: r.size, manifest: r.manifest, manifestSignature: r.manifestSignature },
    };
  }
  throw new OtaError('ANSWER_MALFORMED', `check-in answer: the directive ${JSON.stringify(d).slice(0, 200)} is not one of none, update or rollback`);
}

/** Throws ANSWER_MALFORMED unless `w` is absent or a list of well-formed maintenance windows. */
export function checkWindows(w: unknown): { windows?: MaintenanceWindow[] } {
  if (w === undefined) return {};
  if (!Array.isArray(w) || w.length > 64) throw new OtaError('ANSWER_MALFORMED', 'check-in answer: "windows" is not a list of maintenance windows');
  for (const x of w as MaintenanceWindow[]) {
    const problem = x && typeof x === 'object' ? windowProblem(x) : 'not an object';
    if (problem) throw new OtaError('ANSWER_MALFORMED', `check-in answer: a maintenance window is not well formed (${problem})`);
  }
  return { windows: w as MaintenanceWindow[] };
}

/**
 * Checks in as `device` at `target`. A transport failure (unreachable, 5xx, refused token)
 * throws; an answer that is there but fails verification comes back as `{ ok: false }`.
 */
export async function checkIn(
  target: ApiTarget,
  device: string,
  keyring: Keyring,
  state: Omit<CheckinRequest, 'nonce'>,
  opts: ApiOptions & { now?: () => Date },
): Promise<CheckinResult> {
  const request: CheckinRequest = { nonce: newNonce(), ...state };
  const answer = await postJson(target, `/v1/devices/${encodeURIComponent(device)}/checkin`, request, opts);
  try {
    const verified = await verifyAnswer(answer.body, keyring, { device, nonce: request.nonce, now: opts.now?.() ?? new Date() });
    return { ok: true, request, answer: { ...verified, directive: checkDirective(verified.directive), ...checkWindows(verified.windows) } };
  } catch (err) {
    const refused = isOtaError(err) ? err : new OtaError('ANSWER_MALFORMED', `check-in answer: ${String(err)}`, { cause: err });
    return { ok: false, request, refused };
  }
}
