/**
 * Bundle ranges over HTTP for a delta install: one `Range: bytes=a-b` per request (what every
 * static origin and CDN serves), with the bundle's ETag as If-Range. The answer must be a 206
 * for exactly the bytes asked: a 200 (the whole bundle), another Content-Range or a longer body
 * is refused with its own code rather than interpreted. A connection that drops mid-range is
 * asked again from the first byte not received (retry.ts's policy, the transaction's retry
 * budget), so a cut costs no byte already received.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import type { RangeReader } from '../../shared/delta/range.js';
import type { HttpDownload } from '../infra/bundle-source.js';
import { redirectHooks, redirected } from '../download/redirect.js';
import { retryDelay } from '../download/retry.js';

// got (with its dependencies, which build Intl objects as they load and so page in ICU's data)
// is loaded by the first range request, not by every agent start: an install from a file and
// every full download never need it.
let gotModule: typeof import('got') | undefined;

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Ranges of the bundle at `url`. */
export class HttpRangeReader implements RangeReader {
  readonly stats = { requests: 0, bytes: 0 };
  private readonly etag: string | undefined;

  constructor(
    readonly name: string,
    private readonly opts: HttpDownload,
  ) {
    this.etag = opts.sha256 ? `"${opts.sha256}"` : undefined;
  }

  private stopped(at: number): OtaError {
    return new OtaError('AGENT_STOPPED', `bundle ${this.name}: download stopped at byte ${at}`);
  }

  async *read(start: number, end: number): AsyncGenerator<Buffer> {
    let pos = start;
    let attempt = 0;
    while (pos < end) {
      try {
        for await (const c of this.request(pos, end)) {
          pos += c.length;
          attempt = 0;
          yield c;
        }
        if (pos < end) throw new OtaError('DOWNLOAD_FAILED', `bundle ${this.name}: the answer for bytes ${start}-${end - 1} ended at byte ${pos}`);
      } catch (err) {
        const e = this.classify(err, pos);
        attempt++;
        const delay = (this.opts.delay ?? retryDelay)(attempt, e);
        if (delay === null) throw e;
        const budget = this.opts.budget;
        if (budget.used >= budget.limit) {
          throw new OtaError('DOWNLOAD_RETRIES_EXHAUSTED', `bundle ${this.name}: all ${budget.limit} retries of this download are used; the last failure: ${e.message}`, { cause: e });
        }
        budget.used++;
        this.opts.onRetry?.({ retry: budget.used, attempt, delayMs: delay, offset: pos, error: e });
        try {
          await sleep(delay, undefined, this.opts.signal ? { signal: this.opts.signal } : {});
        } catch {
          throw this.stopped(pos);
        }
      }
    }
  }

  private classify(err: unknown, at: number): OtaError {
    if (this.opts.signal?.aborted) return this.stopped(at);
    if (isOtaError(err)) return err;
    if (gotModule && err instanceof gotModule.TimeoutError) {
      return new OtaError('DOWNLOAD_STALLED', `bundle ${this.name}: no byte for ${this.opts.stallMs / 1000} s at byte ${at}`, { cause: err });
    }
    return new OtaError('DOWNLOAD_FAILED', `bundle ${this.name}: ${errorMessage(err)} at byte ${at}`, { cause: err });
  }

  /** One request for bytes [from, end): checks the answer, yields its body. */
  private async *request(from: number, end: number): AsyncGenerator<Buffer> {
    if (this.opts.signal?.aborted) throw this.stopped(from);
    this.stats.requests++;
    const headers: Record<string, string> = { ...this.opts.headers, range: `bytes=${from}-${end - 1}` };
    if (this.etag) headers['if-range'] = this.etag;
    const stall = this.opts.stallMs;
    gotModule ??= await import('got');
    const req = gotModule.default.stream(this.name, {
      headers,
      retry: { limit: 0 },
      throwHttpErrors: false,
      decompress: false,
      timeout: { lookup: stall, connect: stall, secureConnect: stall, send: stall, response: stall, socket: stall },
      hooks: redirectHooks,
      ...(this.opts.signal ? { signal: this.opts.signal } : {}),
    });
    try {
      const res = await new Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
        req.once('response', resolve);
        req.once('error', reject);
      });
      const status = res.statusCode;
      if (status === 429 || status === 408 || status >= 500) throw new OtaError('DOWNLOAD_FAILED', `bundle ${this.name}: the server answered HTTP ${status}`);
      if (status === 200) {
        throw new OtaError('DELTA_RANGE_NOT_PARTIAL', `bundle ${this.name}: asked for bytes ${from}-${end - 1}, the server answered 200 with the whole bundle`);
      }
      const away = redirected(req);
      if (away && status === 403) {
        // An expired presigned URL (download/redirect.ts): ask the server for a fresh one.
        throw new OtaError('DOWNLOAD_FAILED', `bundle ${this.name}: the redirected range request answered HTTP 403 (an expired URL?); asking the server again`);
      }
      if (status !== 206) throw new OtaError('DOWNLOAD_REFUSED', `bundle ${this.name}: the server answered HTTP ${status} to a range request`);
      const etag = away ? undefined : header(res.headers, 'etag');
      if (this.etag && etag && !etag.startsWith('W/') && etag !== this.etag) {
        throw new OtaError('BUNDLE_CHANGED', `bundle ${this.name}: the server now serves entity ${etag}, not the announced ${this.etag}`);
      }
      const cr = header(res.headers, 'content-range') ?? '';
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
      if (!m || Number(m[1]) !== from || Number(m[2]) !== end - 1) {
        throw new OtaError('DELTA_RANGE_MISMATCH', `bundle ${this.name}: asked for bytes ${from}-${end - 1}, the server answered "${cr || 'no Content-Range'}"`);
      }
      if (m[3] !== '*' && this.opts.size !== undefined && Number(m[3]) !== this.opts.size) {
        throw new OtaError('BUNDLE_CHANGED', `bundle ${this.name}: the server serves ${m[3]} bytes, ${this.opts.size} were announced`);
      }
      let got = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        got += chunk.length;
        if (from + got > end) throw new OtaError('DELTA_RANGE_MISMATCH', `bundle ${this.name}: the answer for bytes ${from}-${end - 1} carries more than ${end - from} bytes`);
        this.stats.bytes += chunk.length;
        yield chunk;
      }
    } finally {
      req.destroy();
    }
  }
}
