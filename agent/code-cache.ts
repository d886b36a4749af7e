/**
 * What the bundled agent's entry (`dist/bundle/ota-agent.mjs`, agent/bundle-launcher.ts) does: loads the
 * agent's code, one CommonJS file next to it (`ota-agent.cjs`), through V8's code cache
 * (`ota-agent.cjs.cache`, made when the bundle is made), so that a start does not parse and
 * compile 1.9 MB of JavaScript again: that compile was the largest single item between process
 * start and the first payload byte (docs/PERFORMANCE.md). Node 20 has no compile cache for ES
 * modules (`module.enableCompileCache` came with Node 22), hence the CommonJS file and
 * `vm.Script`'s `cachedData`.
 *
 * The cache file is the SHA-256 of the code it was made from, then V8's data. A cache made
 * from other code, by another V8 or with other flags is not used (V8 checks the last two and
 * rejects silently; the launcher checks the first): the code is then compiled as without one.
 * `OTAAB_CODE_CACHE_OUT=FILE` makes the launcher write a fresh cache to FILE when the process
 * exits (what scripts/bundle.ts runs once); nothing else writes it.
 */
// First: V8 binds a code cache to its flags, so the young generation's cap
// (infra/young-generation.ts) is set before any code is compiled or its cache made.
import './infra/young-generation.js';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, read, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** Bytes of the cache file's header: the SHA-256 of the code. */
const HEADER = 32;

/**
 * The parameters of the function expression `file` holds: the CommonJS module wrapper, written
 * into the file when it is bundled (scripts/bundle.ts) rather than added here, which would make
 * a second 1.9 MB string that lives until a full collection (2 MiB more RssAnon, measured).
 */
export const WRAPPER_PARAMS = '(function (exports, require, module, __filename, __dirname) {';

/**
 * Compiles `file` (a function expression over CommonJS code) with the cache at `cacheFile` when
 * it fits; says whether it was used, and the code's SHA-256 (the header of a cache made from it).
 */
export function compileCached(file: string, cacheFile: string): { script: Script; cacheUsed: boolean; digest: Buffer } {
  const code = readFileSync(file);
  const digest = createHash('sha256').update(code).digest();
  let cachedData: Buffer | undefined;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.length > HEADER && cache.subarray(0, HEADER).equals(digest)) cachedData = cache.subarray(HEADER);
  } catch {
    // no cache: compiled from source
  }
  const script = new Script(code.toString('utf8'), { filename: file, ...(cachedData ? { cachedData } : {}) });
  return { script, cacheUsed: cachedData !== undefined && !script.cachedDataRejected, digest };
}

/**
 * Starts reading, on one of libuv's threads, the native module SQLite loads when the agent opens
 * its store (2 MB), so that a start from an empty page cache (the first after a boot) finds it
 * in memory instead of waiting for the disk there, while this thread compiles and runs the
 * agent's code. One read into one buffer, dropped once read: only the page cache keeps it.
 */
function warmNativeModule(require: NodeJS.Require): void {
  try {
    const path = require.resolve('better-sqlite3/build/Release/better_sqlite3.node');
    const fd = openSync(path, 'r');
    const buf = Buffer.allocUnsafeSlow(fstatSync(fd).size);
    read(fd, buf, 0, buf.length, 0, () => closeSync(fd));
  } catch {
    // Not where it usually is: it is found and loaded as before.
  }
}

/** Runs the CommonJS agent `file` in this process, as `node file` would. */
export function runAgent(file: string): void {
  const require = createRequire(file);
  warmNativeModule(require);
  const { script, digest } = compileCached(file, `${file}.cache`);
  const out = process.env.OTAAB_CODE_CACHE_OUT;
  if (out) {
    // After the run, so that the functions it compiled are in the cache too.
    process.on('exit', () => {
      // The code's hash, then V8's data; `digest` is of the bytes the script was compiled from.
      writeFileSync(`${out}.tmp`, Buffer.concat([digest, script.createCachedData()]));
      renameSync(`${out}.tmp`, out);
    });
  }
  const fn = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  const mod = { exports: {} };
  fn.call(mod.exports, mod.exports, require, mod, file, dirname(file));
}

