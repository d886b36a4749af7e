/**
 * A bundle download over HTTP (http1.ts: the socket read into a fixed buffer) that survives a flaky link. When the connection drops,
 * stalls (no byte for `stallMs`) or the server answers 5xx/429, it waits as retry.ts says and
 * asks again with `Range: bytes=<first byte not yet received>-`, so the bundle reader sees one
 * unbroken stream and no byte it already has is fetched again. Every byte received is kept
 * until the reader takes it, even when the connection fails right after, which is what makes
 * "resume from exactly what was consumed" true.
 *
 * With the bundle's sha256 (the server's strong ETag) the requests carry `If-Range`, and an
 * answer whose ETag names another entity is refused as BUNDLE_CHANGED. The announced size
 * caps what is read (BUNDLE_TOO_LARGE). Each retry counts against a budget shared by the whole
 * transaction; when it is spent the download fails with DOWNLOAD_RETRIES_EXHAUSTED.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { HttpGet, HttpRequestError, type HttpAnswer, type KeepAlive } from './http1.js';
import { REDIRECT_DROPS } from './redirect.js';
import { retryDelay } from './retry.js';

/** Retries a transaction may still make: `used` grows, `limit` stays. */
export interface RetryBudget {
  used: number;
  readonly limit: number;
}

/** One retry about to happen, for the log and the transaction's history. */
export interface RetryEvent {
  /** Retries used by the transaction so far, this one included. */
  readonly retry: number;
  /** Failures in a row without a byte received in between. */
  readonly attempt: number;
  readonly delayMs: number;
  /** Bundle offset the next request starts from. */
  readonly offset: number;
  readonly error: OtaError;
}

/** How to download. */
export interface HttpSourceOptions {
  /** Bundle offset of the first byte wanted. */
  readonly offset: number;
  /** sha256 of the whole bundle, when announced: its ETag is `"<sha256>"`. */
  readonly sha256?: string;
  /** Size of the whole bundle, when announced: a bigger one is refused before it is read. */
  readonly size?: number;
  /** Extra request headers (the device's Authorization, for its own server only). */
  readonly headers?: Readonly<Record<string, string>>;
  /** No byte for this long counts as a network error. */
  readonly stallMs: number;
  readonly budget: RetryBudget;
  /** Aborting it ends the download with AGENT_STOPPED. */
  readonly signal?: AbortSignal;
  readonly onRetry?: (e: RetryEvent) => void;
  /** The retry policy; retry.ts's by default (tests pass a faster one). */
  readonly delay?: (attempt: number, error: unknown) => number | null;
  /**
   * Give up (DOWNLOAD_GAVE_UP) once the URL has delivered no byte for this long, retries
   * included: a technician at the device wants an answer in minutes. The daemon sets none and
   * keeps its patient retries, bounded by `budget` only.
   */
  readonly giveUpMs?: number;
}

/**
 * One range `[offset, end)` of the bundle, as a delta install asks: every request asks for
 * exactly the bytes still missing, and an answer must be a 206 for exactly them (a 200 is
 * DELTA_RANGE_NOT_PARTIAL, another Content-Range or a longer body DELTA_RANGE_MISMATCH).
 */
export interface HttpRangeOptions extends HttpSourceOptions {
  /** The first byte not wanted. */
  readonly end: number;
  /** Connections kept between the ranges of one install. */
  readonly keepAlive?: KeepAlive;
  /** Where received bytes wait for the reader: one for all of an install's ranges (empty when given). */
  readonly ring?: ByteRing;
  /** Called for each request made, retries included. */
  readonly onRequest?: () => void;
}

/** An opened download. */
export interface HttpSource {
  /** The bundle's bytes from `offset` on, across as many requests as it takes. */
  readonly chunks: AsyncIterable<Buffer>;
  /** The whole bundle's size, when the server said. */
  readonly total: number | null;
  /** Stops the download and releases the connection. */
  close(): void;
}

// Bytes kept for the reader before the connection is paused, and when it is resumed: enough
// to ride out a slow slot write, small enough for a gateway's memory.
const HIGH_WATER = 1 << 20;
const LOW_WATER = 256 << 10;
/** The ring's first size: the high-water mark and more than one socket read past it. */
export const RING = 2 * HIGH_WATER;
/**
 * The most bytes one view lends: a socket read's, what the reader was handed before the ring
 * (a download's checkpoints fall at the first chunk past each `checkpointBytes`).
 */
const VIEW = 64 << 10;

/**
 * The received bytes waiting for the reader. The HTTP client lends each read's body bytes for
 * the length of a call only (http1.ts reads the socket into one buffer), so they are copied
 * into this one, used round, and the reader gets views into it, lent as a file source's chunks
 * are: the bytes of one stay put until the reader asks for the next (OpenedSource.chunks).
 */
export class ByteRing {
  private buf: Buffer;
  private head = 0;
  private stored = 0;
  private lent = 0;

  /** A ring of `bytes` (RING: the high-water mark and a socket read past it; a range's length is enough for it). */
  constructor(bytes = RING) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(1, bytes));
  }

  /** Bytes held: lent to the reader and not yet taken. */
  get size(): number {
    return this.stored;
  }

  /** Copies `c` in after the bytes held. */
  push(c: Buffer): void {
    if (this.stored + c.length > this.buf.length) this.grow(this.stored + c.length);
    const cap = this.buf.length;
    let tail = (this.head + this.stored) % cap;
    for (let off = 0; off < c.length; ) {
      const n = Math.min(c.length - off, cap - tail);
      c.copy(this.buf, tail, off, off + n);
      off += n;
      tail = (tail + n) % cap;
    }
    this.stored += c.length;
  }

  /** Frees the view lent last; lends the next run of bytes (up to VIEW, and the ring's end), or undefined. */
  take(): Buffer | undefined {
    this.release();
    if (this.stored === 0) return undefined;
    this.lent = Math.min(this.stored, this.buf.length - this.head, VIEW);
    return this.buf.subarray(this.head, this.head + this.lent);
  }

  /** Drops every byte held (a range abandoned part-way), so that the ring serves the next. */
  clear(): void {
    this.head = 0;
    this.stored = 0;
    this.lent = 0;
  }

  /** Frees the view lent last. */
  release(): void {
    this.head = (this.head + this.lent) % this.buf.length;
    this.stored -= this.lent;
    this.lent = 0;
  }

  // More than the ring holds arrived. The download pauses its socket at HIGH_WATER, so at most
  // one more read (64 KiB) comes and RING holds it; this keeps the ring correct should a
  // caller push past that: a larger ring with the same bytes from its start. A view lent out
  // of the old one stays valid: it is not reused.
  private grow(need: number): void {
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = Buffer.allocUnsafeSlow(cap);
    const first = Math.min(this.stored, this.buf.length - this.head);
    this.buf.copy(next, 0, this.head, this.head + first);
    this.buf.copy(next, first, 0, this.stored - first);
    this.buf = next;
    this.head = 0;
  }
}

class Download {
  private current: HttpGet | undefined;
  /** The status of the answer being read, for messages. */
  private status: number | undefined;
  private readonly ring: ByteRing;
  /** The first byte not wanted, for a range (HttpRangeOptions). */
  private readonly end: number | undefined;
  private paused = false;
  /** Bytes received from `offset` on (queued or already handed to the reader). */
  private received = 0;
  private complete = false;
  private failure: OtaError | undefined;
  private waiter: (() => void) | undefined;
  private closed = false;
  private attempt = 0;
  private receivedAtFailure = -1;
  /** When the current run of failures without a byte in between began. */
  private failingSince: number | undefined;
  private readonly etag: string | undefined;
  total: number | null = null;

  constructor(
    private readonly url: string,
    private readonly opts: HttpSourceOptions & Partial<HttpRangeOptions>,
  ) {
    this.etag = opts.sha256 ? `"${opts.sha256}"` : undefined;
    this.ring = opts.ring ?? new ByteRing();
    this.end = opts.end;
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => this.fail(this.current, this.stopped());

  private get position(): number {
    return this.opts.offset + this.received;
  }

  private stopped(): OtaError {
    return new OtaError('AGENT_STOPPED', `bundle ${this.url}: download stopped at byte ${this.position}`);
  }

  private networkError(err: unknown): OtaError {
    if (isOtaError(err)) return err;
    if (this.opts.signal?.aborted) return this.stopped();
    if (err instanceof HttpRequestError && err.code === 'HTTP_TIMEOUT') {
      return new OtaError('DOWNLOAD_STALLED', `bundle ${this.url}: no answer within ${this.opts.stallMs / 1000} s (${err.event}) at byte ${this.position}`, { cause: err });
    }
    const code = (err as { code?: unknown }).code;
    const message = errorMessage(err);
    const detail = `${message}${typeof code === 'string' && !message.includes(code) && !code.startsWith('HTTP_') ? ` (${code})` : ''}`;
    const status = this.status;
    return new OtaError('DOWNLOAD_FAILED', `bundle ${this.url}: ${detail} at byte ${this.position}${status ? ` (HTTP ${status})` : ''}`, { cause: err });
  }

  /** Marks the current request failed (once) and wakes the reader. */
  private fail(req: HttpGet | undefined, err: OtaError): void {
    if (req !== this.current || this.failure || this.complete) return;
    this.failure = err;
    req?.destroy(err);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Checks an answer's status and headers; returns how many leading body bytes to drop. */
  private accept(res: HttpAnswer, from: number): number {
    const status = res.status;
    if (status === 429 || status === 408 || status >= 500) {
      throw new OtaError('DOWNLOAD_FAILED', `bundle ${this.url}: the server answered HTTP ${status}`);
    }
    const away = res.redirected;
    if (away && status === 403) {
      // An expired presigned URL: the next request asks the server for a fresh one.
      throw new OtaError('DOWNLOAD_FAILED', `bundle ${this.url}: the redirected download answered HTTP 403 (an expired URL?); asking the server again`);
    }
    if (this.end !== undefined && status === 200) {
      throw new OtaError('DELTA_RANGE_NOT_PARTIAL', `bundle ${this.url}: asked for bytes ${from}-${this.end - 1}, the server answered 200 with the whole bundle`);
    }
    if (status !== 200 && status !== 206) {
      throw new OtaError('DOWNLOAD_REFUSED', `bundle ${this.url}: the server answered HTTP ${status}${this.end !== undefined ? ' to a range request' : ''}`);
    }
    const etag = away ? undefined : res.headers.etag;
    if (this.etag && etag && !etag.startsWith('W/') && etag !== this.etag) {
      throw new OtaError('BUNDLE_CHANGED', `bundle ${this.url}: the server now serves entity ${etag}, not the announced ${this.etag}`);
    }
    if (this.end !== undefined) return this.acceptRange(res, from, this.end);
    let skip = 0;
    let total: number | null = null;
    if (status === 206) {
      const range = res.headers['content-range'];
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(range ?? '');
      if (!m || Number(m[1]) !== from) {
        throw new OtaError('DOWNLOAD_REFUSED', `bundle ${this.url}: asked for bytes from ${from}, the server answered "${range ?? 'no Content-Range'}"`);
      }
      if (m[2] !== '*') total = Number(m[2]);
    } else {
      // A whole body to a Range request: the server ignores ranges (for a changed bundle its
      // ETag was refused above). Drop what the reader already has; the hashes still cover it.
      skip = from;
      const length = Number(res.headers['content-length']);
      if (Number.isSafeInteger(length)) total = length;
    }
    if (total !== null && this.opts.size !== undefined && total !== this.opts.size) {
      if (total > this.opts.size) throw new OtaError('BUNDLE_TOO_LARGE', `bundle ${this.url}: the server serves ${total} bytes, ${this.opts.size} were announced`);
      throw new OtaError('BUNDLE_CHANGED', `bundle ${this.url}: the server serves ${total} bytes, ${this.opts.size} were announced`);
    }
    if (total !== null) this.total = total;
    return skip;
  }

  /** A 206 must carry exactly bytes `from` to `end - 1` of a bundle of the announced size. */
  private acceptRange(res: HttpAnswer, from: number, end: number): number {
    const cr = res.headers['content-range'] ?? '';
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
    if (!m || Number(m[1]) !== from || Number(m[2]) !== end - 1) {
      throw new OtaError('DELTA_RANGE_MISMATCH', `bundle ${this.url}: asked for bytes ${from}-${end - 1}, the server answered "${cr || 'no Content-Range'}"`);
    }
    if (m[3] !== '*' && this.opts.size !== undefined && Number(m[3]) !== this.opts.size) {
      throw new OtaError('BUNDLE_CHANGED', `bundle ${this.url}: the server serves ${m[3]} bytes, ${this.opts.size} were announced`);
    }
    if (m[3] !== '*') this.total = Number(m[3]);
    return 0;
  }

  /** One request from the first byte not yet received; resolves once its answer is accepted. */
  connect(): Promise<void> {
    const from = this.position;
    const headers: Record<string, string> = { ...this.opts.headers };
    // A range asks for exactly its bytes; a download, for the rest of the bundle once past 0.
    const range = this.end !== undefined ? `${from}-${this.end - 1}` : from > 0 ? `${from}-` : undefined;
    if (range) {
      headers.range = `bytes=${range}`;
      if (this.etag) headers['if-range'] = this.etag;
    }
    this.opts.onRequest?.();
    this.failure = undefined;
    this.complete = false;
    this.status = undefined;
    return new Promise<void>((resolve, reject) => {
      let answered = false;
      let skip = 0;
      const settle = (err: OtaError): void => {
        answered = true;
        if (req === this.current) this.current = undefined;
        reject(err);
      };
      const req: HttpGet = new HttpGet(
        this.url,
        // The server's own offsets and ETag count bytes as stored: the request asks for no
        // compression (and http1.ts never does).
        { headers, timeoutMs: this.opts.stallMs, dropOnRedirect: REDIRECT_DROPS, ...(this.opts.keepAlive ? { keepAlive: this.opts.keepAlive } : {}) },
        {
          answer: (res) => {
            this.status = res.status;
            try {
              skip = this.accept(res, from);
            } catch (err) {
              req.destroy();
              settle(this.networkError(err));
              return;
            }
            answered = true;
            resolve();
          },
          body: (view) => {
            if (req !== this.current || this.failure) return;
            let c = view;
            if (skip > 0) {
              if (c.length <= skip) {
                skip -= c.length;
                return;
              }
              c = c.subarray(skip);
              skip = 0;
            }
            if (this.end !== undefined && this.position + c.length > this.end) {
              this.fail(req, new OtaError('DELTA_RANGE_MISMATCH', `bundle ${this.url}: the answer for bytes ${from}-${this.end - 1} carries more than ${this.end - from} bytes`));
              return;
            }
            this.received += c.length;
            this.ring.push(c);
            if (this.ring.size >= HIGH_WATER && !this.paused) {
              this.paused = true;
              req.pause();
            }
            this.wake();
          },
          end: () => {
            if (req !== this.current || this.failure) return;
            if (this.end !== undefined && this.position < this.end) {
              this.fail(req, new OtaError('DOWNLOAD_FAILED', `bundle ${this.url}: the answer for bytes ${from}-${this.end - 1} ended at byte ${this.position}`));
              return;
            }
            if (this.end === undefined && this.total !== null && this.position < this.total) {
              this.fail(req, new OtaError('DOWNLOAD_FAILED', `bundle ${this.url}: the connection ended at byte ${this.position} of ${this.total}`));
              return;
            }
            this.complete = true;
            this.wake();
          },
          // A failure before the answer (refused, a timeout, the agent stopped) settles the
          // request; after it, the reader hears of it.
          error: (err) => {
            const e = this.networkError(err);
            if (!answered) settle(e);
            else this.fail(req, e);
          },
        },
      );
      this.current = req;
      req.start();
    });
  }

  /** Waits, then asks again, until a request is answered or the policy or budget says stop. */
  async recover(first: OtaError): Promise<void> {
    let err = first;
    for (;;) {
      if (this.opts.signal?.aborted) throw this.stopped();
      // Bytes arrived since the last failure: the link works, start the backoff over.
      if (this.received !== this.receivedAtFailure || this.failingSince === undefined) {
        this.attempt = 0;
        this.failingSince = Date.now();
      }
      this.receivedAtFailure = this.received;
      this.attempt++;
      const delay = (this.opts.delay ?? retryDelay)(this.attempt, err);
      if (delay === null) throw err;
      const giveUp = this.opts.giveUpMs;
      if (giveUp !== undefined && Date.now() - this.failingSince + delay > giveUp) {
        const secs = Math.round((Date.now() - this.failingSince) / 1000);
        throw new OtaError('DOWNLOAD_GAVE_UP', `bundle ${this.url}: no byte for ${secs} s and ${this.attempt - 1} retries; giving up (the limit is ${Math.round(giveUp / 1000)} s: --give-up-after or server.installGiveUpSeconds); the last failure: ${err.message}`, { cause: err });
      }
      const budget = this.opts.budget;
      if (budget.used >= budget.limit) {
        throw new OtaError('DOWNLOAD_RETRIES_EXHAUSTED', `bundle ${this.url}: all ${budget.limit} retries of this download are used; the last failure: ${err.message}`, { cause: err });
      }
      budget.used++;
      this.opts.onRetry?.({ retry: budget.used, attempt: this.attempt, delayMs: delay, offset: this.position, error: err });
      try {
        await sleep(delay, undefined, this.opts.signal ? { signal: this.opts.signal } : {});
      } catch {
        throw this.stopped();
      }
      try {
        await this.connect();
        return;
      } catch (e) {
        err = this.networkError(e);
      }
    }
  }

  /** Waits for bytes, an end or a failure; no byte for `stallMs` fails the request as stalled. */
  private waitForData(): Promise<void> {
    const req = this.current;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.fail(req, new OtaError('DOWNLOAD_STALLED', `bundle ${this.url}: no byte for ${this.opts.stallMs / 1000} s at byte ${this.position}`));
        resolve();
      }, this.opts.stallMs);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async *iterate(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.closed) return;
        // The view lent last is given back here: the reader asked for the next.
        const chunk = this.ring.take();
        if (this.paused && this.ring.size < LOW_WATER) {
          this.paused = false;
          this.current?.resume();
        }
        if (chunk) {
          yield chunk;
          continue;
        }
        if (this.complete) return;
        if (this.failure) {
          const err = this.failure;
          this.failure = undefined;
          this.paused = false;
          await this.recover(err);
          continue;
        }
        await this.waitForData();
      }
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    const req = this.current;
    this.current = undefined;
    req?.destroy();
    this.wake();
  }
}

/**
 * Opens a download at `opts.offset`: the first answer is awaited (and retried like any other),
 * so a refusal such as a 404 surfaces here, before anything is written.
 */
export async function openHttpSource(url: string, opts: HttpSourceOptions | HttpRangeOptions): Promise<HttpSource> {
  const d = new Download(url, opts);
  try {
    await d.connect();
  } catch (err) {
    await d.recover(err as OtaError);
  }
  return { chunks: d.iterate(), total: d.total, close: () => d.close() };
}
