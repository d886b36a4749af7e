/**
 * Writes a stream of chunks to a file at consecutive offsets, gathered into writes of about
 * `WRITE_BATCH` bytes, with one write in flight while the next batch gathers: the main thread
 * goes on receiving and hashing while a thread of libuv's pool copies the batch before into the
 * page cache. Awaiting the write of each 64 KiB socket chunk instead costs a round trip through
 * the pool per chunk, each waiting for a turn of the event loop: it left the agent's main
 * thread idle most of a download (docs/PERFORMANCE.md) and starved uploads on a busy server.
 *
 * Chunks are kept, not copied, until written: the caller must not change a chunk after handing
 * it over (socket and file streams, and the bundle reader's slices of them, never do).
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Bytes gathered into one write. */
export const WRITE_BATCH = 1 << 20;

/** A write's failure, held until the writer is next awaited (never an unhandled rejection). */
interface Failed {
  error: unknown;
}

/**
 * What both writers share: one write in flight at consecutive offsets from `pos`, its failure
 * held until the writer is next awaited. A subclass gathers bytes and calls `launch`.
 */
abstract class OneWriteInFlight {
  private inFlight: Promise<Failed | undefined> | undefined;

  /**
   * Writes to `fh` from offset `pos` on; a failed write is reported as `failed(offset, cause)`
   * returns it, from the `add` or `drain` after it.
   */
  constructor(
    private readonly fh: FileHandle,
    private pos: number,
    private readonly failed: (at: number, cause: unknown) => unknown = (_at, cause) => cause,
  ) {}

  /** Writes what is gathered, once the write before is done. */
  protected abstract send(): Promise<void>;

  /** Resolves once every byte added so far is written (not yet fsynced). */
  async drain(): Promise<void> {
    await this.send();
    await this.settle();
  }

  /** Waits for a write still in flight, its outcome already lost to an earlier error. */
  async abandon(): Promise<void> {
    await this.inFlight;
  }

  /** Writes `bufs` at `at` (a subclass may pick another handle). */
  protected write(bufs: Buffer[], at: number): Promise<void> {
    return writeAll(this.fh, bufs, at);
  }

  /** Starts writing `bufs` at the next offset; call only after `settle`. */
  protected launch(bufs: Buffer[], length: number): void {
    const at = this.pos;
    this.pos += length;
    this.inFlight = this.write(bufs, at).then(
      () => undefined,
      (cause: unknown) => ({ error: this.failed(at, cause) }),
    );
  }

  /** Waits for the write in flight; throws its failure. */
  protected async settle(): Promise<void> {
    const f = this.inFlight;
    this.inFlight = undefined;
    const failure = await f;
    if (failure) throw failure.error;
  }
}

/** See the module comment. */
export class WriteBehind extends OneWriteInFlight {
  private batch: Buffer[] = [];
  private batched = 0;

  /** Queues `chunk`; waits only when a full batch finds the write before still running. */
  async add(chunk: Buffer): Promise<void> {
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched >= WRITE_BATCH) await this.send();
  }

  protected async send(): Promise<void> {
    await this.settle();
    if (this.batched === 0) return;
    const bufs = this.batch;
    const n = this.batched;
    this.batch = [];
    this.batched = 0;
    this.launch(bufs, n);
  }
}

/** Writes `bufs` at `at`, going on after a short write. */
export async function writeAll(fh: FileHandle, bufs: Buffer[], at: number): Promise<void> {
  // An empty buffer has nothing to write (and a write of nothing returns 0).
  let rest = bufs.filter((b) => b.length > 0);
  let pos = at;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, pos);
    if (bytesWritten <= 0) throw new Error(`no byte written at offset ${pos}`);
    pos += bytesWritten;
    let n = bytesWritten;
    const left: Buffer[] = [];
    for (const b of rest) {
      if (n >= b.length) n -= b.length;
      else {
        left.push(n > 0 ? b.subarray(n) : b);
        n = 0;
      }
    }
    rest = left;
  }
}

/**
 * A WriteBehind that copies: chunks are gathered into one of two fixed buffers of `batch`
 * bytes, the other being written meanwhile. The caller may reuse a chunk as soon as `add`
 * returns (a source reading into a small ring of buffers does), and the writer allocates
 * nothing after its start: its memory is the two buffers, whatever the stream's length. The
 * copy costs about 0.1 ms per MiB on the main thread.
 */
export class CopyingWriteBehind extends OneWriteInFlight {
  private bufs: [Buffer, Buffer];
  /** Index of the buffer gathering; the other may be in flight. */
  private k: 0 | 1 = 0;
  private filled = 0;

  /**
   * `shared`: two buffers to gather in instead of new ones, for writers used one after the
   * other (a tree's files); the writer before must have nothing in flight (drained or abandoned).
   */
  constructor(fh: FileHandle, pos: number, failed?: (at: number, cause: unknown) => unknown, batch = WRITE_BATCH, shared?: [Buffer, Buffer]) {
    super(fh, pos, failed);
    this.bufs = shared ?? this.buffers(batch);
  }

  /** The two buffers batches gather in. */
  protected buffers(batch: number): [Buffer, Buffer] {
    return [Buffer.allocUnsafeSlow(batch), Buffer.allocUnsafeSlow(batch)];
  }

  /** Copies `chunk` in; waits only when a full buffer finds the write before still running. */
  async add(chunk: Buffer): Promise<void> {
    let from = 0;
    while (from < chunk.length) {
      const buf = this.bufs[this.k];
      const n = chunk.copy(buf, this.filled, from);
      this.filled += n;
      from += n;
      if (this.filled === buf.length) await this.send();
    }
  }

  protected async send(): Promise<void> {
    // The other buffer is free again once its write is done.
    await this.settle();
    if (this.filled === 0) return;
    const data = this.bufs[this.k].subarray(0, this.filled);
    this.filled = 0;
    this.k = this.k === 0 ? 1 : 0;
    this.launch([data], data.length);
  }
}

/** WebAssembly.Memory (Node's lib typings declare the namespace for types only). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly.Memory;

/** Alignment of O_DIRECT transfers: buffer address, file offset and length. */
export const DIRECT_ALIGN = 4096;

/**
 * `count` buffers of `size` bytes each (a multiple of DIRECT_ALIGN), page-aligned for O_DIRECT:
 * views into one WebAssembly memory, whose base is page-aligned.
 */
export function alignedBuffers(count: number, size: number): Buffer[] {
  const mem = new WasmMemory({ initial: Math.ceil((count * size) / 65536) });
  return Array.from({ length: count }, (_, i) => Buffer.from(mem.buffer, i * size, size));
}

/**
 * A CopyingWriteBehind for a block device opened a second time with O_DIRECT (`direct`): the
 * batches gather in page-aligned memory (a WebAssembly memory, whose base is page-aligned) and
 * go to the device without passing through its page cache; a last batch that does not end on
 * a 4 KiB boundary writes its whole blocks the same way and its tail through `fh`, the buffered
 * handle, so the fsync that follows flushes it. Start it only at an aligned offset.
 *
 * Why: a buffered write into a block device fills its page cache, which the kernel then has
 * to write back, and a checkpoint's fsync waits for that; `dd bs=1M` into a loop device here
 * took 3.3 to 5.0 s for 512 MiB buffered, 1.05 to 1.6 s with `oflag=direct`
 * (docs/PERFORMANCE.md). The same bytes land either way.
 */
export class DirectWriteBehind extends CopyingWriteBehind {
  constructor(
    private readonly buffered: FileHandle,
    private readonly direct: FileHandle,
    pos: number,
    failed?: (at: number, cause: unknown) => unknown,
    batch = WRITE_BATCH,
  ) {
    if (pos % DIRECT_ALIGN !== 0 || batch % DIRECT_ALIGN !== 0) throw new Error(`DirectWriteBehind: offset ${pos} and batch ${batch} must be multiples of ${DIRECT_ALIGN}`);
    super(buffered, pos, failed, batch);
  }

  protected override buffers(batch: number): [Buffer, Buffer] {
    const [a, b] = alignedBuffers(2, batch);
    return [a!, b!];
  }

  protected override async write(bufs: Buffer[], at: number): Promise<void> {
    // One buffer per batch (CopyingWriteBehind.send), starting at an aligned offset.
    for (const b of bufs) {
      const whole = b.length - (b.length % DIRECT_ALIGN);
      if (whole > 0) await writeAll(this.direct, [b.subarray(0, whole)], at);
      if (whole < b.length) await writeAll(this.buffered, [b.subarray(whole)], at + whole);
      at += b.length;
    }
  }
}

/**
 * The writer of a raw slot's bytes from `pos` on, `fh` being the slot opened `r+` at `path`. A
 * block device is written with O_DIRECT where it can be (DirectWriteBehind): not through its
 * page cache, which each checkpoint's fsync would have to write back first. A write starting off
 * a 4 KiB boundary (a resumed one), a file, or a device refusing O_DIRECT is written buffered.
 * `close` closes the O_DIRECT handle, once the writer has nothing in flight.
 */
export async function slotWriter(
  fh: FileHandle,
  path: string,
  blockDevice: boolean,
  pos: number,
  failed: (at: number, cause: unknown) => unknown,
): Promise<{ writer: CopyingWriteBehind; close: () => Promise<void> }> {
  const direct = blockDevice && pos % DIRECT_ALIGN === 0 ? await open(path, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined) : undefined;
  return {
    writer: direct ? new DirectWriteBehind(fh, direct, pos, failed) : new CopyingWriteBehind(fh, pos, failed),
    close: async () => {
      await direct?.close();
    },
  };
}
