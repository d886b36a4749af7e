/**
 * One error type for the whole project: every failure a user can meet carries a stable
 * `code` from the catalogue (error-catalogue.ts), a one-line message naming what was wrong,
 * and the original cause.
 */
import { ERRORS, type ErrorCode, type ErrorKind } from './error-catalogue.js';

export { ERRORS, isErrorCode, type ErrorCode, type ErrorKind, type ErrorSpec } from './error-catalogue.js';

/** A failure with a stable code; `message` names the operation and the thing it acted on. */
export class OtaError extends Error {
  override readonly name = 'OtaError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    const spec = ERRORS[code] as (typeof ERRORS)[ErrorCode] | undefined;
    // Only untyped callers (JavaScript, a code read from the wire) can get here with another string.
    if (!spec) throw new Error(`unknown error code ${String(code)} (message: ${message})`);
    this.code = code;
    this.status = spec.status;
    this.kind = spec.kind;
  }

  /** The catalogue's advice for this code. */
  get fix(): string {
    return ERRORS[this.code].fix;
  }
}

/** True when `err` is an OtaError, optionally of the given code. */
export function isOtaError(err: unknown, code?: ErrorCode): err is OtaError {
  return err instanceof OtaError && (code === undefined || err.code === code);
}

/** The error's message whatever was thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
