/** The error codes are a union type: a misspelt code fails `npm run typecheck`, and an untyped caller's fails at run time. */
import { describe, expect, it } from 'vitest';
import { OtaError, isOtaError } from '../../shared/errors.js';

describe('OtaError codes', () => {
  it('takes the catalogue\'s status and kind, and refuses a code the catalogue lacks', () => {
    const e = new OtaError('DOWNLOAD_FAILED', 'GET https://x/b.otab: connection reset');
    expect({ code: e.code, status: e.status, kind: e.kind }).toEqual({ code: 'DOWNLOAD_FAILED', status: 502, kind: 'transient' });
    expect(e.fix).toMatch(/connectivity/);
    expect(isOtaError(e, 'DOWNLOAD_FAILED')).toBe(true);
    // @ts-expect-error a misspelt code is a type error
    expect(() => new OtaError('DOWNLAOD_FAILED', 'x')).toThrow(/unknown error code DOWNLAOD_FAILED/);
    // @ts-expect-error isOtaError takes catalogue codes only
    expect(isOtaError(e, 'DOWNLAOD_FAILED')).toBe(false);
  });
});
