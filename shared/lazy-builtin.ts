/**
 * A Node built-in module loaded on its first use rather than at start-up. Loading `node:tls`
 * or `node:child_process` (with `net`, `dgram` and their streams) costs a few milliseconds each
 * before an install's first payload byte, where a local install needs neither
 * (docs/PERFORMANCE.md). `import()` would do the same but makes every caller asynchronous.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** A getter for the built-in module `name` (e.g. `node:tls`), which loads it when first called. */
export function lazyBuiltin<T>(name: `node:${string}`): () => T {
  let mod: T | undefined;
  return () => (mod ??= load(name) as T);
}
