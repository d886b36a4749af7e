/**
 * A pull reader over any async iterable of byte chunks (a file stream, an HTTP body).
 * Hands out exact-length reads and zero-copy slices so the tar parser never buffers a payload.
 * An input chunk may be lent (valid only until the next one is asked for): nothing here keeps
 * a slice of it across that, and a slice handed out is valid as long as its chunk.
 */
import { OtaError } from './errors.js';

/** Sequential reader that tracks how many bytes it has consumed. */
export class ByteSource {
  private readonly it: AsyncIterator<Uint8Array>;
  private head: Buffer = Buffer.alloc(0);
  private done = false;
  /** Offset of the next unread byte from the start of the underlying input. */
  position: number;

  constructor(input: AsyncIterable<Uint8Array>, startPosition = 0) {
    this.it = input[Symbol.asyncIterator]();
    this.position = startPosition;
  }

  private async fill(): Promise<boolean> {
    while (this.head.length === 0) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      const v = r.value;
      this.head = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
    return true;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }

  /**
   * Reads exactly `n` bytes, copying only when they span chunks: into `scratch` when it holds
   * `n` (the result is then a view of it, valid until it is used again), else into a new
   * buffer. Returns what was there if the input ends first (shorter than `n`); callers decide
   * whether that is truncation.
   */
  async read(n: number, scratch?: Buffer): Promise<Buffer> {
    if (!(await this.fill())) return Buffer.alloc(0);
    if (this.head.length >= n) {
      const out = this.head.subarray(0, n);
      this.head = this.head.subarray(n);
      this.position += n;
      return out;
    }
    const parts: Buffer[] = [];
    const into = scratch && scratch.length >= n ? scratch : undefined;
    let got = 0;
    while (got < n && (await this.fill())) {
      const take = Math.min(n - got, this.head.length);
      // A copy: the input may reuse a chunk's memory once the next one is asked for (a file
      // source reading into a ring of buffers, agent/bundle-source.ts).
      if (into) this.head.copy(into, got, 0, take);
      else parts.push(Buffer.from(this.head.subarray(0, take)));
      this.head = this.head.subarray(take);
      got += take;
      this.position += take;
    }
    return into ? into.subarray(0, got) : Buffer.concat(parts, got);
  }

  /** Yields exactly `n` bytes as slices of the input; throws BUNDLE_TRUNCATED if it ends early. */
  async *take(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) {
        throw new OtaError('BUNDLE_TRUNCATED', `${what}: the input ended ${left} bytes early, at offset ${this.position}`);
      }
      const take = Math.min(left, this.head.length);
      const out = this.head.subarray(0, take);
      this.head = this.head.subarray(take);
      this.position += take;
      left -= take;
      yield out;
    }
  }

  /** Discards exactly `n` bytes; throws BUNDLE_TRUNCATED if the input ends first. */
  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.take(n, what)) {
      // draining
    }
  }
}

/**
 * An error the input threw, as opposed to one of the reader's own: a parser over the input
 * (a tree's tar, gzip) tells its caller which of the two failed.
 */
export class SourceFailure {
  constructor(readonly error: unknown) {}
}

/** `chunks`, with whatever they throw wrapped in a SourceFailure. */
export async function* guarded<T>(chunks: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* chunks;
  } catch (e) {
    throw new SourceFailure(e);
  }
}
