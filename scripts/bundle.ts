#!/usr/bin/env node
/**
 * Bundles `ota-agent` and `ota-release` with esbuild: `dist/bundle/ota-release.mjs`, one ES
 * module file, and the agent as `dist/bundle/ota-agent.mjs`, a small launcher
 * (agent/bundle-launcher.ts) that runs `ota-agent.cjs`, the agent in one CommonJS file,
 * through V8's code cache `ota-agent.cjs.cache`, made here by one run of the launcher (Node 20
 * caches no ES module's compile; docs/PERFORMANCE.md, start-up); openpgp, got and execa, which
 * an install does not load, are in files of their own next to it (`AGENT_LAZY`). It bundles
 * the JavaScript that `tsc` wrote into `dist/` (the code the tests run), with every dependency
 * inlined except better-sqlite3's native module, which cannot be inlined: it is loaded from a
 * `node_modules/` next to (or above) the bundle (the release tool's bundle leaves all of
 * better-sqlite3 out). One file means one module-loader lookup instead of a few hundred at
 * start-up (docs/PERFORMANCE.md), and a device needs only these files, Node 20 and
 * better-sqlite3 (docs/AGENT.md, "Installing the agent").
 *
 *   npm run bundle            (builds first)
 *   node dist/scripts/bundle.js [--out DIR] [--minify]
 */
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { WRAPPER_PARAMS } from '../agent/code-cache.js';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');

/** What is bundled: the program name and its compiled entry point. */
export const BUNDLES = [
  { name: 'ota-agent', entry: 'dist/agent/cli.js' },
  { name: 'ota-release', entry: 'dist/release/cli.js' },
] as const;

/** Modules left as imports: native code that must be loaded from disk. */
export const EXTERNAL = ['better-sqlite3'];

/**
 * What the agent's bundle leaves as imports: only better-sqlite3's native module. Its
 * JavaScript (a dozen small files, and `bindings`'s search for the module) is inlined: read
 * one by one from a cold disk they cost about 20 ms of start-up (docs/PERFORMANCE.md); the
 * store gives better-sqlite3 the native module's path (agent/store/db.ts).
 */
export const AGENT_EXTERNAL = ['*.node'];

/**
 * The bundle is ESM but some inlined dependencies are CommonJS and `require()` Node's built-in
 * modules; esbuild's ESM output has no `require`, so the banner gives the file one.
 */
const BANNER = "import { createRequire as __otaabCreateRequire } from 'node:module';\nconst require = __otaabCreateRequire(import.meta.url);";

/**
 * The start of every CommonJS file of the agent: `import.meta.url` (openpgp's createRequire)
 * becomes the file's own URL.
 */
const IMPORT_META_URL = `"use strict";\nvar __otaabImportMetaUrl = require("node:url").pathToFileURL(__filename).href;`;

/**
 * The agent's code, in the function expression the launcher runs (agent/code-cache.ts), whose
 * `require` is the one the launcher passes in.
 */
const CJS_BANNER = `${WRAPPER_PARAMS}${IMPORT_META_URL}`;

/** The agent's launcher and its CommonJS code; the code cache is made by running the launcher once. */
export const AGENT_FILES = { launcher: 'ota-agent.mjs', code: 'ota-agent.cjs', cache: 'ota-agent.cjs.cache' } as const;

/**
 * The agent's large dependencies that an install does not load: each is bundled into a CommonJS
 * file of its own next to the agent's code (`ota-agent-<name>.cjs`), which the code `require`s
 * where it imports the package, so only when that code first runs. openpgp (signatures that
 * `shared/pgp-verify.ts` leaves to it), got (check-ins, reports, HTTP health checks) and execa
 * (command and systemd health checks, busy gates) were 1.3 MB of the agent's 1.9: read, hashed
 * and decoded at every start from a cold disk, and kept by V8 as long as the process lives.
 * Each is imported by its named exports only (got's `got`, not its default).
 */
export const AGENT_LAZY = ['openpgp', 'got', 'execa'] as const;

/** The file a lazily loaded package of the agent is bundled into. */
export const lazyFile = (name: (typeof AGENT_LAZY)[number]): string => `ota-agent-${name}.cjs`;

/**
 * Makes the agent's code a one-byte string for V8. V8 keeps the source of the code it runs for
 * as long as the process lives (functions are compiled lazily from it), and one character
 * beyond Latin-1 makes the whole 1.9 MB a two-byte string: 3.8 MB of RssAnon instead of 1.9
 * (docs/PERFORMANCE.md §2). esbuild escapes such characters in the code itself (its default
 * charset is ASCII) but not in the comments it keeps, and openpgp's JSDoc has math symbols:
 * those are replaced with '?', one per UTF-16 unit so that no column of the source map moves.
 */
export async function oneByteSource(file: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  // eslint-disable-next-line no-control-regex
  const narrow = text.replace(/[^\u0000-\u00ff]/g, '?');
  if (narrow !== text) await writeFile(file, narrow);
}

/** Builds the agent into `outDir`: launcher, code, code cache; returns the launcher's path. */
async function bundleAgent(outDir: string, opts: { minify?: boolean }): Promise<string> {
  const common = { bundle: true, platform: 'node', target: 'node20', keepNames: true, minifySyntax: true, minifyWhitespace: opts.minify === true, logLevel: 'warning', absWorkingDir: root } as const;
  const code = join(outDir, AGENT_FILES.code);
  const launcher = join(outDir, AGENT_FILES.launcher);
  const cache = join(outDir, AGENT_FILES.cache);
  const lazy = new RegExp(`^(${AGENT_LAZY.join('|')})$`);
  // Each package becomes a one-line CommonJS module requiring its file: esbuild then turns a
  // dynamic import() of it into a require too (vm.Script, which runs the code, has no import()).
  const sideFiles: Plugin = {
    name: 'otaab-lazy-packages',
    setup(b) {
      b.onResolve({ filter: lazy }, (a) => ({ path: a.path, namespace: 'otaab-lazy' }));
      b.onLoad({ filter: /.*/, namespace: 'otaab-lazy' }, (a) => ({ contents: `module.exports = require('./${lazyFile(a.path as (typeof AGENT_LAZY)[number])}');`, loader: 'js' }));
      b.onResolve({ filter: /^\.\/ota-agent-[a-z]+\.cjs$/ }, (a) => ({ path: a.path, external: true }));
    },
  };
  const cjs = { ...common, format: 'cjs', external: AGENT_EXTERNAL, define: { 'import.meta.url': '__otaabImportMetaUrl' }, legalComments: 'eof', sourcemap: 'external' } as const;
  await build({ ...cjs, entryPoints: [join(root, 'dist', 'agent', 'cli.js')], outfile: code, plugins: [sideFiles], banner: { js: CJS_BANNER }, footer: { js: '})' } });
  await oneByteSource(code);
  for (const name of AGENT_LAZY) {
    const file = join(outDir, lazyFile(name));
    // A plain CommonJS module, loaded by Node's own require (it has its own __filename).
    await build({ ...cjs, stdin: { contents: `export * from '${name}';`, resolveDir: root, sourcefile: `${name}.js` }, outfile: file, banner: { js: IMPORT_META_URL } });
    await oneByteSource(file);
  }
  await build({ ...common, entryPoints: [join(root, 'dist', 'agent', 'bundle-launcher.js')], outfile: launcher, format: 'esm', banner: { js: '#!/usr/bin/env node' } });
  await chmod(launcher, 0o755);
  await rm(`${launcher}.map`, { force: true }); // the launcher has none; one left from an older layout would mislead
  // One run, so that the cache holds what start-up compiles (the module bodies and the CLI's
  // dispatch), not only the top level; with the code the cache was made from, checked by hash.
  await rm(cache, { force: true });
  await promisify(execFile)(process.execPath, [launcher, '--help'], {
    // better-sqlite3 from this repository, wherever the bundle is written (--out).
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_PATH: join(root, 'node_modules'), OTAAB_CODE_CACHE_OUT: cache },
  });
  await stat(cache);
  return launcher;
}

/** Writes the bundles into `outDir`; returns their paths. */
export async function bundle(outDir: string, opts: { minify?: boolean } = {}): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const b of BUNDLES) {
    const entry = join(root, b.entry);
    await stat(entry).catch(() => {
      throw new Error(`${b.entry} is missing: run 'npm run build' first`);
    });
    if (b.name === 'ota-agent') {
      written.push(await bundleAgent(outDir, opts));
      continue;
    }
    const outfile = join(outDir, `${b.name}.mjs`);
    const options: BuildOptions = {
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: EXTERNAL,
      banner: { js: BANNER },
      // Error names and class names stay as written: messages and `instanceof` logs use them.
      keepNames: true,
      minifySyntax: true,
      minifyWhitespace: opts.minify === true,
      legalComments: 'eof',
      sourcemap: 'external',
      logLevel: 'warning',
      absWorkingDir: root,
    };
    await build(options);
    await chmod(outfile, 0o755);
    written.push(outfile);
  }
  return written;
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === new URL(import.meta.url).pathname;
if (invokedDirectly) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, minify: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('Usage: node dist/scripts/bundle.js [--out DIR] [--minify]\n\nWrites dist/bundle/ota-agent.mjs (a launcher), ota-agent.cjs and its code cache, ota-agent-{openpgp,got,execa}.cjs\n(loaded when first needed), and dist/bundle/ota-release.mjs (better-sqlite3 stays external).\n');
    process.exit(0);
  }
  try {
    const files = await bundle(resolve(values.out ?? join(root, 'dist', 'bundle')), { minify: values.minify === true });
    for (const f of files) process.stdout.write(`${f} (${((await stat(f)).size / 1024).toFixed(0)} KiB)\n`);
  } catch (err) {
    process.stderr.write(`bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
