/**
 * Keeps the agent's young generation at V8's initial size (1 MiB semi-spaces) instead of
 * letting it grow to 16 MiB semi-spaces. A long install allocates a steady stream of short-lived
 * objects (a promise, a slice, a stream record per chunk); V8 doubles the young generation
 * whenever a scavenge finds many survivors, and never gives the pages back while the install
 * runs. That committed, mostly empty young generation was the largest single item of the
 * agent's peak RssAnon (up to 17 MiB, docs/PERFORMANCE.md §2).
 *
 * `--max-semi-space-size` would say the same but works only on node's command line (the heap is
 * sized when the isolate is made); the growth factor is read each time V8 grows the space, so
 * setting it to 1 at run time stops the growth where it is. It is set before the agent's code
 * is compiled (agent/code-cache.ts imports this module first: V8 takes a code cache only under
 * the flags it was made with) and by the CLI's first import (dist/agent/cli.js run directly).
 *
 * The cost is more scavenges (one per MiB allocated instead of one per 16 MiB); each is cheap
 * when little survives, which is the case of a streaming install: measured in
 * docs/PERFORMANCE.md §2 (install times before and after).
 */
import { setFlagsFromString } from 'node:v8';

/** V8's factor for growing the young generation; 1 keeps it at its initial size. */
export const SEMI_SPACE_GROWTH_FACTOR = 1;

/** Sets the flag (idempotent). */
export function capYoungGeneration(): void {
  setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
}

/**
 * Sets the flag again once `worker` runs: starting a worker thread puts V8's flags back to the
 * command line's (measured: with the flag set before `new Worker`, the main thread's young
 * generation still grew to 16 MiB semi-spaces; set again after it, it stayed at 1 MiB).
 */
export function recapAfter(worker: { once(event: 'online', fn: () => void): unknown }): void {
  capYoungGeneration();
  worker.once('online', capYoungGeneration);
}

capYoungGeneration();
