/**
 * Gzip decompression that stops the moment more than the declared size would come out, into
 * two fixed buffers.
 *
 * Node's zlib streams allocate a fresh output buffer (`chunkSize` bytes) each time one fills:
 * inflating a 4 GiB image made 16 384 ArrayBuffers of 256 KiB, which V8 frees only when it
 * collects the small objects holding them, so the gzip path needed forced collections
 * (agent/infra/reclaim.ts) to stay flat. Here zlib's handle, the one Node's streams drive, is
 * driven directly: each write runs on a thread of libuv's pool, as a stream's does, and inflates
 * into one of two buffers of OUT bytes while the consumer works on the other. Nothing is
 * allocated per chunk, whatever the image's size.
 *
 * That handle is below Node's public API (`process.binding('zlib')`, allowed since Node 11, a
 * deprecation in documentation only, DEP0111; refused under the permission model). Where it
 * is missing or its `init` refuses the arguments, the stream is used instead (`inflatesInPlace()`
 * says which); both give the same bytes and the same errors, and the tests run both.
 */
import { constants, createGunzip } from 'node:zlib';
import { SourceFailure, guarded } from './byte-source.js';
import { OtaError, errorMessage, isOtaError } from './errors.js';

/** Bytes per output buffer (two of them). */
export const OUT = 256 * 1024;

/** The native zlib context behind Node's zlib streams (src/node_zlib.cc). */
interface ZlibHandle {
  /** Sets the context up; `state` receives [avail_out, avail_in] after each write. */
  init(windowBits: number, level: number, memLevel: number, strategy: number, state: Uint32Array, done: () => void, dictionary: undefined): void;
  /** Inflates on libuv's pool; calls `done` (given to init), or `onerror` instead. */
  write(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  /** The same on this thread; an error calls `onerror` before it returns. */
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  /** Back to the state after `init`, for another stream. */
  reset(): void;
  close(): void;
  onerror: (message: string, errno: number, code?: string) => void;
}

/** A write's outcome: its error, if zlib reported one. */
type Step = Error | undefined;

/** A gunzip context writing into caller-owned memory. */
interface Context {
  /** One write of `input` into `out` from `outOff` to its end; settles to zlib's error, if any. */
  step(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Buffer, outOff: number): Promise<Step>;
  /** [avail_out, avail_in] after the last step. */
  readonly state: Uint32Array;
  close(): void;
}

/** zlib's handle in `mode`, its errors to `onerror`; undefined where this Node lacks or refuses it. */
function openHandle(mode: number, state: Uint32Array, done: () => void, onerror: ZlibHandle['onerror']): ZlibHandle | undefined {
  try {
    const binding = (process as unknown as { binding?: (name: string) => { Zlib?: new (mode: number) => ZlibHandle } }).binding?.('zlib');
    if (typeof binding?.Zlib !== 'function') return undefined;
    const h = new binding.Zlib(mode);
    h.onerror = onerror;
    h.init(constants.Z_DEFAULT_WINDOWBITS, constants.Z_DEFAULT_COMPRESSION, constants.Z_DEFAULT_MEMLEVEL, constants.Z_DEFAULT_STRATEGY, state, done, undefined);
    return h;
  } catch {
    return undefined;
  }
}

/** A gunzip context; undefined where this Node does not expose zlib's handle or refuses it. */
function openContext(): Context | undefined {
  const state = new Uint32Array(2);
  let settle: ((e: Step) => void) | undefined;
  const finish = (e: Step): void => {
    const s = settle;
    settle = undefined;
    s?.(e);
  };
  const h = openHandle(
    constants.GUNZIP,
    state,
    () => finish(undefined),
    (message, errno, code) => finish(Object.assign(new Error(message), { errno, code })),
  );
  if (!h) return undefined;
  let closed = false;
  return {
    state,
    step: (flush, input, inOff, inLen, out, outOff) =>
      new Promise<Step>((resolve) => {
        settle = resolve;
        h.write(flush, input, inOff, inLen, out, outOff, out.length - outOff);
      }),
    // Closing with a write in flight is deferred by the handle until that write is done.
    close: () => {
      if (!closed) h.close();
      closed = true;
    },
  };
}

/**
 * Raw deflate segments (a delta's chunks, shared/index-check.ts) inflated on this thread into a
 * buffer the caller owns, one after another with one zlib context, where `inflateRawSync`
 * allocates a buffer for each: what keeps a delta's apply from allocating per fetched chunk.
 */
export class RawInflater {
  private readonly state = new Uint32Array(2);
  private failure: Error | undefined;
  private h: ZlibHandle | undefined;

  private constructor() {}

  /** An inflater, or undefined where this Node lacks zlib's handle (then inflateRawSync it is). */
  static open(): RawInflater | undefined {
    const r = new RawInflater();
    return r.handle() ? r : undefined;
  }

  private handle(): ZlibHandle | undefined {
    this.h ??= openHandle(
      constants.INFLATERAW,
      this.state,
      () => undefined,
      (message, errno, code) => (this.failure = Object.assign(new Error(message), { errno, code })),
    );
    return this.h;
  }

  /**
   * Inflates all of `input` (a raw deflate segment ending with a sync flush or a final block)
   * into `out` from its start; returns the bytes written. Throws zlib's error, or a RangeError
   * when they would not fit: `out` one byte larger than the most expected tells "too long".
   */
  inflate(input: Uint8Array, out: Buffer): number {
    const h = this.handle();
    if (!h) throw new Error('zlib handle unavailable');
    this.failure = undefined;
    h.writeSync(constants.Z_SYNC_FLUSH, input, 0, input.length, out, 0, out.length);
    const failed = this.failure as Error | undefined;
    if (failed) {
      // A failed context is not reused: the next segment gets a fresh one.
      this.close();
      throw failed;
    }
    const availOut = this.state[0]!;
    h.reset();
    if (availOut === 0) throw new RangeError(`more than ${out.length - 1} bytes`);
    return out.length - availOut;
  }

  close(): void {
    this.h?.close();
    this.h = undefined;
  }
}

let inPlace: boolean | undefined;

/**
 * Whether this Node inflates into fixed buffers (else through a stream, whose chunks are each
 * allocated). Found out by the first call, not at start-up: most installs inflate nothing.
 */
export function inflatesInPlace(): boolean {
  if (inPlace === undefined) {
    const ctx = openContext();
    ctx?.close();
    inPlace = ctx !== undefined;
  }
  return inPlace;
}

/**
 * The inflated bytes of `chunks`, in views of two fixed buffers taking turns: a view is valid
 * until the consumer asks for the next one (a lent chunk, as a file source's are, see
 * agent/infra/bundle-source.ts). The input is read to its end even once the gzip data has
 * ended, so that whoever checks the input's hash sees every byte of it.
 */
async function* fixedGunzip(ctx: Context, chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const input = guarded(chunks);
  const bufs = [Buffer.allocUnsafeSlow(OUT), Buffer.allocUnsafeSlow(OUT)] as const;
  const EMPTY = Buffer.alloc(0);
  let cur: Buffer = EMPTY;
  let inOff = 0;
  let inLen = 0;
  let sourceDone = false;
  /** The gzip data has ended (zlib takes no more input, or the final flush returned). */
  let ended = false;

  const next = async (): Promise<void> => {
    const r = await input.next();
    if (r.done) sourceDone = true;
    else {
      cur = r.value;
      inOff = 0;
      inLen = cur.length;
    }
  };

  // Fills `out` from its start until it is full or the data has ended; returns the bytes in it.
  const fill = async (out: Buffer): Promise<number> => {
    let off = 0;
    while (off < out.length && !ended) {
      if (inLen === 0) {
        if (!sourceDone) {
          await next();
          continue;
        }
        // The input is all in: flush. Data cut short fails here ("unexpected end of file").
        const e = await ctx.step(constants.Z_FINISH, EMPTY, 0, 0, out, off);
        if (e) throw e;
        const room = out.length - off;
        off += room - ctx.state[0]!;
        if (ctx.state[0]! > 0) ended = true;
        continue;
      }
      const room = out.length - off;
      const e = await ctx.step(constants.Z_NO_FLUSH, cur, inOff, inLen, out, off);
      if (e) throw e;
      const availOut = ctx.state[0]!;
      const availIn = ctx.state[1]!;
      off += room - availOut;
      // Room left and input left: zlib takes no more (the data ended, padding follows). Node's
      // stream ends its output there too.
      if (availOut > 0 && availIn > 0) ended = true;
      inOff += inLen - availIn;
      inLen = availIn;
    }
    return off;
  };

  // One fill runs ahead while the consumer has the other buffer; it settles, never rejects.
  const ahead = (k: 0 | 1): Promise<{ n: number; error?: unknown }> =>
    fill(bufs[k]).then(
      (n) => ({ n }),
      (error: unknown) => ({ n: 0, error }),
    );
  let k: 0 | 1 = 0;
  let pending = ahead(k);
  let complete = false;
  try {
    for (;;) {
      const { n, error } = await pending;
      if (error !== undefined) throw error;
      if (n === 0) break;
      const view = bufs[k].subarray(0, n);
      k = k === 0 ? 1 : 0;
      pending = ended ? Promise.resolve({ n: 0 }) : ahead(k);
      yield view;
    }
    // The data has ended: read the rest of the input (zeros padding it, or nothing).
    while (!sourceDone) await next();
    complete = true;
  } finally {
    // Once the fill running ahead is done: the handle closes and the input is let go. A consumer
    // that stopped early does not wait for it, which may be waiting for a stalled link's next
    // bytes; the fill holds its buffers until then, so zlib never writes into freed memory.
    const cleanup = pending.then(async () => {
      ctx.close();
      if (!sourceDone) await input.return(undefined);
    });
    if (complete) await cleanup;
    else cleanup.catch(() => undefined);
  }
}

/**
 * The same through Node's gunzip stream: each input chunk is written, and the next one asked for,
 * only once zlib has taken all of it in, so a lent chunk is never read into again while zlib
 * holds it. Its output chunks are allocated one by one (see the module comment).
 */
async function* streamGunzip(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const gz = createGunzip({ chunkSize: OUT });
  const input = chunks[Symbol.asyncIterator]();
  let sourceError: SourceFailure | undefined;
  /** The consumer stopped, or the inflater failed: the feed lets the input go. */
  let stopped = false;
  /** The gzip data has ended: the feed reads the rest of the input without writing it. */
  let outputEnded = false;
  const written = (c: Buffer): Promise<boolean> =>
    new Promise((resolve) => {
      // A destroyed inflater may never call a write back.
      const closed = (): void => resolve(false);
      gz.once('close', closed);
      gz.write(c, (err) => {
        gz.off('close', closed);
        resolve(!err);
      });
    });
  const feed = (async () => {
    let done = false;
    try {
      for (;;) {
        let r: IteratorResult<Buffer>;
        try {
          r = await input.next();
        } catch (e) {
          sourceError = new SourceFailure(e);
          gz.destroy(e as Error);
          done = true;
          return;
        }
        if (r.done) {
          done = true;
          if (!outputEnded) gz.end();
          return;
        }
        if (stopped) return;
        if (outputEnded) continue;
        // A failed write (corrupt data, or the inflater destroyed) is reported by the output side.
        if (!(await written(r.value)) && !outputEnded) return;
      }
    } finally {
      if (!done) await input.return?.(undefined).catch(() => undefined);
    }
  })();
  let complete = false;
  try {
    yield* gz as AsyncIterable<Buffer>;
    complete = true;
  } catch (err) {
    throw sourceError ?? err;
  } finally {
    if (complete) outputEnded = true;
    else stopped = true;
    gz.destroy();
    // After an early stop the feed is not awaited: it may be waiting for the source's next
    // bytes (a stalled link); it ends on its own and lets the source go.
  }
  // The data has ended (padding may follow): the feed reads the input to its end.
  await feed;
  if (sourceError) throw sourceError;
}

/**
 * Yields the inflated bytes of a gzip stream; throws PAYLOAD_UNPACKED_TOO_LARGE before
 * yielding a byte past `unpackedSize`, and PAYLOAD_CORRUPT if the data is not gzip or
 * inflates to less. An error of the input itself is thrown as it is (an OtaError) or as
 * PAYLOAD_CORRUPT naming it.
 *
 * A yielded chunk is lent: it is valid until the next one is asked for (`fixed`, the default
 * where Node allows it, reuses two buffers; see the module comment). A consumer keeping bytes
 * longer copies them.
 */
export async function* gunzipLimited(chunks: AsyncIterable<Buffer>, unpackedSize: number, what: string, fixed = inflatesInPlace()): AsyncGenerator<Buffer> {
  const ctx = fixed ? openContext() : undefined;
  const inflated = ctx ? fixedGunzip(ctx, chunks) : streamGunzip(chunks);
  let n = 0;
  try {
    for await (const chunk of inflated) {
      if (n + chunk.length > unpackedSize) {
        throw new OtaError('PAYLOAD_UNPACKED_TOO_LARGE', `${what}: inflates past its declared unpackedSize of ${unpackedSize} bytes`);
      }
      n += chunk.length;
      yield chunk;
    }
  } catch (err) {
    const e = err instanceof SourceFailure ? err.error : err;
    if (isOtaError(e)) throw e;
    throw new OtaError('PAYLOAD_CORRUPT', `${what}: gzip data is corrupt (${errorMessage(e)})`, { cause: e });
  }
  if (n !== unpackedSize) {
    throw new OtaError('PAYLOAD_CORRUPT', `${what}: inflates to ${n} bytes, but its declared unpackedSize is ${unpackedSize}`);
  }
}
