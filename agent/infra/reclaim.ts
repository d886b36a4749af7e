/**
 * Keeps the garbage of a byte stream that allocates a buffer per chunk from piling up. Every
 * such chunk is an ArrayBuffer outside the V8 heap, referenced by a small JS object; V8 frees
 * it only when it collects that object, and it scavenges the young generation when the
 * generation fills with JS objects, which a stream of 64 KiB chunks does slowly (or when the
 * external memory has grown by 64 MiB). A minor collection every few MiB of streamed bytes, a
 * scavenge of a nearly empty young generation taking well under a millisecond, frees them as
 * they go.
 *
 * It is used only where Node lacks the zlib handle that inflates into fixed buffers
 * (shared/inflate.ts, inflatesInPlace(); Node 20 has it): a gzip image's payload, and a delta's
 * chunks (agent/delta/apply.ts), are then inflated into a fresh buffer each. Every path
 * allocates nothing per chunk otherwise: a delta's ranges are lent (RangeReader.lend), a file
 * source reads into a ring of buffers (bundle-source.ts), a download reads its socket into one
 * (download/http1.ts), zlib inflates into two (inflate.ts), a tree's tar is read in place
 * (shared/tree.ts), and the slots copy into two more. That is the design (docs/PERFORMANCE.md).
 *
 * V8's `gc` function is reachable only with --expose-gc. The agent does not own its command
 * line (the CLI's shebang, a systemd unit, `node dist/agent/cli.js` in tests), so it sets the
 * flag at run time and takes `gc` from a context made after that. Node warns that a flag set
 * after start may do nothing: then `gc` is missing, and streaming works as before, with more
 * memory. The memory benchmark shows which case a machine is in.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { capYoungGeneration, stopOptimizing } from './young-generation.js';

/**
 * Streamed bytes between two collections. More than a chunk's life (up to 1 MiB waiting in
 * the download queue, a write batch gathering and one in flight: about 3 MiB of stream), so a
 * chunk still in use survives at most one scavenge and is never promoted to the old
 * generation, which only a full collection sweeps. Measured with npm run bench on 2026-12-02:
 * every 2 to 4 MiB the install's peak RssAnon was 49-53 MiB and the 512 MiB download took
 * 1.4-1.8 s; with no collection 62 MiB and 3.8 s (memory freed late is memory faulted in
 * afresh); every 8 MiB 68 MiB; every 512 KiB 73 MiB (chunks promoted, then kept).
 */
export const RECLAIM_EVERY = 4 << 20;

export type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const f = runInNewContext('gc') as unknown;
      // Measured: the young generation's cap did not hold after this (a delta install's grew
      // to 2 MiB semi-spaces at this point); set it again (young-generation.ts).
      capYoungGeneration();
      stopOptimizing();
      gc = typeof f === 'function' ? (f as Gc) : null;
    } catch {
      gc = null;
    }
  }
  return gc;
}

/**
 * Counts streamed bytes; after every `every` of them, collects the young generation (with V8's
 * `gc`, or `collect` when given). The freed chunks' memory returns a moment later: V8 releases
 * ArrayBuffers on a background thread.
 */
export function reclaimer(every = RECLAIM_EVERY, collect: Gc | null = collector()): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < every || !collect) return;
    since = 0;
    collect({ type: 'minor' });
  };
}

/** Passes `chunks` on, collecting the young generation every RECLAIM_EVERY bytes of them. */
export async function* reclaiming(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const reclaim = reclaimer();
  for await (const c of chunks) {
    reclaim(c.length);
    yield c;
  }
}
