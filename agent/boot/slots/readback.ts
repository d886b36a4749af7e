/**
 * Reading a raw slot back and hashing it again, on a worker thread: the design's check that
 * the storage holds what was written (flash can acknowledge a write, fsync included, and drop
 * it). A block device is read with O_DIRECT, so the device answers, not the page cache; an
 * image file (the simulator's stand-in for a partition) is read normally.
 *
 * The raw slot hands each checkpoint's region to the worker as soon as that region's fsync has
 * returned, while the next region downloads on the main thread: by the end of the download only
 * the last region is left to read, and the hashing runs on the second core. Regions come in
 * order, from offset 0, so one running SHA-256 covers the slot's first `length` bytes.
 *
 * The worker's code is a self-contained script (node built-ins only) passed with `eval`, so it
 * needs no file of its own next to the agent's, bundled or not. O_DIRECT needs the buffer, the
 * offset and the length aligned to the device's logical block size: the buffers live in a
 * WebAssembly memory, which is page-aligned, and reads start at an aligned offset and hash only
 * the wanted bytes.
 */
import { Worker } from 'node:worker_threads';
import { recapAfter } from '../../infra/young-generation.js';

/** Bytes per read. */
export const READBACK_CHUNK = 1 << 20;

/** The worker's heap: its code is a page and its data two aligned buffers outside the heap. */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 };

/** What the worker runs. `workerData`: { path, direct, chunk }. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const { path, direct, chunk } = workerData;
const ALIGN = 4096;
const mem = new WebAssembly.Memory({ initial: Math.ceil((2 * chunk) / 65536) });
const bufs = [Buffer.from(mem.buffer, 0, chunk), Buffer.from(mem.buffer, chunk, chunk)];
const hash = createHash('sha256');
let fh;
let pos = 0;
let failed;
const inbox = [];
let wake;
parentPort.on('message', (m) => { inbox.push(m); if (wake) { const w = wake; wake = undefined; w(); } });
const next = async () => { while (inbox.length === 0) await new Promise((ok) => (wake = ok)); return inbox.shift(); };
// Reads an aligned window holding byte 'at' into bufs[k]; settles to its byte count or error.
const readAt = (k, at, end) => {
  const base = at - (at % ALIGN);
  const want = Math.min(chunk, Math.ceil((end - base) / ALIGN) * ALIGN);
  return fh.read(bufs[k], 0, want, base).then((r) => ({ base, n: r.bytesRead }), (error) => ({ error }));
};
async function region(start, end) {
  if (start !== pos) throw new Error('read-back region starts at ' + start + ', expected ' + pos);
  if (end <= start) return;
  let k = 0;
  let at = start;
  let pending = readAt(k, at, end);
  try {
    while (at < end) {
      const r = await pending;
      if (r.error) throw r.error;
      const from = at - r.base;
      const upto = Math.min(r.n, end - r.base);
      if (upto <= from) throw new Error('the slot ends at offset ' + (r.base + r.n) + ', before ' + end);
      const nextAt = r.base + upto;
      const cur = k;
      k = 1 - k;
      pending = nextAt < end ? readAt(k, nextAt, end) : undefined;
      hash.update(bufs[cur].subarray(from, upto));
      at = nextAt;
    }
  } finally {
    await pending;
  }
  pos = end;
}
(async () => {
  for (;;) {
    const m = await next();
    try {
      if (failed) throw failed;
      if (!fh) fh = await fs.promises.open(path, fs.constants.O_RDONLY | (direct ? fs.constants.O_DIRECT : 0));
      if (m.type === 'region') await region(m.start, m.end);
      else {
        await fh.close();
        parentPort.postMessage({ type: 'digest', length: pos, sha256: hash.digest('hex') });
        return;
      }
    } catch (e) {
      failed = failed || e;
      if (m.type !== 'region') {
        parentPort.postMessage({ type: 'error', message: String((e && e.message) || e), code: e && e.code });
        return;
      }
    }
  }
})();
`;

/** The worker's outcome. */
type Outcome = { type: 'digest'; length: number; sha256: string } | { type: 'error'; message: string; code?: string };

/** A read-back in progress: regions handed over in order, then the digest of them all. */
export class ReadBack {
  private worker: Worker | undefined;
  private outcome: Promise<Outcome> | undefined;
  private end = 0;

  /** Reads `path` once regions come; `direct` reads with O_DIRECT (a block device). */
  constructor(
    private readonly path: string,
    private readonly direct: boolean,
  ) {}

  /**
   * The worker, started on the first call: by the writer ahead of its first region, so that its
   * start-up (tens of ms) overlaps that region's writes and fsync instead of following them, and
   * with the first region at the latest.
   */
  start(): Worker {
    if (!this.worker) {
      // A small young generation: the worker's garbage (a promise and a result per read) is
      // collected as it goes instead of growing the heap over a long read-back.
      const w = new Worker(WORKER, { eval: true, workerData: { path: this.path, direct: this.direct, chunk: READBACK_CHUNK }, resourceLimits: WORKER_LIMITS });
      recapAfter(w);
      this.outcome = new Promise<Outcome>((resolve) => {
        w.once('message', (m: Outcome) => resolve(m));
        w.once('error', (e) => resolve({ type: 'error', message: e.message }));
        w.once('exit', (code) => resolve({ type: 'error', message: `read-back worker exited (${code})` }));
      });
      this.worker = w;
    }
    return this.worker;
  }

  /** Bytes handed over so far. */
  get handedOver(): number {
    return this.end;
  }

  /** Reads and hashes the slot up to `end` next (from where the region before ended). */
  upTo(end: number): void {
    if (end <= this.end) return;
    this.start().postMessage({ type: 'region', start: this.end, end });
    this.end = end;
  }

  /** The sha256 of every byte handed over, once read; throws the first read error. */
  async digest(): Promise<{ length: number; sha256: string }> {
    this.start().postMessage({ type: 'finish' });
    const o = await this.outcome!;
    await this.close();
    if (o.type === 'error') throw Object.assign(new Error(o.message), o.code ? { code: o.code } : {});
    return { length: o.length, sha256: o.sha256 };
  }

  /** Stops the worker (a write that failed part-way). */
  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}

/** Reads and hashes the first `length` bytes of `path` on a worker thread. */
export async function readBackWhole(path: string, length: number, direct: boolean): Promise<string> {
  const rb = new ReadBack(path, direct);
  try {
    rb.upTo(length);
    return (await rb.digest()).sha256;
  } finally {
    await rb.close();
  }
}
