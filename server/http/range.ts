/**
 * HTTP Range and If-Range for bundle downloads (RFC 9110 §14), as pure functions. One range
 * per request is served; a multi-range or malformed header is ignored (the whole bundle is
 * sent), which the RFC allows and every resuming client handles.
 */

/** How to answer a GET given its Range header. */
export type RangePlan = { type: 'full' } | { type: 'partial'; start: number; end: number } | { type: 'unsatisfiable' };

const SPEC = /^bytes=(\d*)-(\d*)$/i;

/** Plans the answer for `header` over a representation of `size` bytes (`end` inclusive). */
export function planRange(header: string | undefined, size: number): RangePlan {
  if (header === undefined) return { type: 'full' };
  const m = SPEC.exec(header.replace(/\s+/g, ''));
  if (!m) return { type: 'full' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { type: 'full' };
  if (a === '') {
    // Suffix range: the last n bytes.
    const n = Number(b);
    if (n === 0 || size === 0) return { type: 'unsatisfiable' };
    return { type: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) return { type: 'full' };
  if (start >= size) return { type: 'unsatisfiable' };
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  return { type: 'partial', start, end };
}

/**
 * True when a Range may be honoured under `If-Range`: absent, or naming exactly our strong
 * ETag. A date or any other validator does not match, so the client gets the whole bundle.
 */
export function ifRangeHolds(ifRange: string | undefined, etag: string): boolean {
  return ifRange === undefined || ifRange.trim() === etag;
}
