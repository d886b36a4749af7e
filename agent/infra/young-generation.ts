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
 *
 * The same place turns V8's optimizing compiler off once an install streams (stopOptimizing).
 */
import { setFlagsFromString } from 'node:v8';

/** V8's factor for growing the young generation; 1 keeps it at its initial size. */
export const SEMI_SPACE_GROWTH_FACTOR = 1;

/** Sets the flag (idempotent). */
export function capYoungGeneration(): void {
  setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
}

/**
 * `--no-opt`: no TurboFan once an install streams. Its compilations run on V8's platform
 * threads, each in zones that malloc several MiB while they last, and start once functions are
 * hot, which a long install reaches and a short one does not: a thread's arena grew by 3.5 MiB
 * for 0.3 s, 0.8 s into a 2 GiB install (`strace -k` of its growth: `Zone::Expand` under
 * TurboFan's pipeline), and 4 GiB installs peaked 4.8 to 5.7 MiB above 128 MiB ones. The
 * agent's work per byte is native (hashing, copying, zlib, I/O); its JavaScript then runs in
 * Ignition and Sparkplug. Set when the stream starts (the read-back worker's start, an fs
 * slot's first payload, the first collection of reclaim.ts), not at the agent's start, whose
 * one-off code (openpgp's tables, the store's opening) reached the first payload byte 5 ms
 * later without TurboFan. Measured in docs/PERFORMANCE.md.
 */
export function stopOptimizing(): void {
  setFlagsFromString('--no-opt');
}

/**
 * Sets the flags again once `worker` runs: starting a worker thread puts V8's flags back to the
 * command line's (measured: with the flag set before `new Worker`, the main thread's young
 * generation still grew to 16 MiB semi-spaces; set again after it, it stayed at 1 MiB).
 */
export function recapAfter(worker: { once(event: 'online', fn: () => void): unknown }): void {
  const set = (): void => {
    capYoungGeneration();
    stopOptimizing();
  };
  set();
  worker.once('online', set);
}

capYoungGeneration();
