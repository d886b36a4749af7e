#!/usr/bin/env node
/**
 * Bundles `ota-agent` and `ota-release` into one ES module file each with esbuild:
 * `dist/bundle/ota-agent.mjs` and `dist/bundle/ota-release.mjs`. It bundles the JavaScript that
 * `tsc` wrote into `dist/` (the code the tests run), with every dependency inlined except
 * better-sqlite3, whose native module cannot be inlined: it stays an import resolved from a
 * `node_modules/` next to (or above) the bundle. One file means one module-loader lookup
 * instead of a few hundred at start-up (docs/PERFORMANCE.md), and a device needs only the
 * file, Node 20 and better-sqlite3 (docs/AGENT.md, "Installing the agent").
 *
 *   npm run bundle            (builds first)
 *   node dist/scripts/bundle.js [--out DIR] [--minify]
 */
import { build, type BuildOptions } from 'esbuild';
import { chmod, mkdir, stat } from 'node:fs/promises';
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
 * The bundle is ESM but some inlined dependencies are CommonJS and `require()` Node's built-in
 * modules; esbuild's ESM output has no `require`, so the banner gives the file one.
 */
const BANNER = "import { createRequire as __otaabCreateRequire } from 'node:module';\nconst require = __otaabCreateRequire(import.meta.url);";

/** Writes the bundles into `outDir`; returns their paths. */
export async function bundle(outDir: string, opts: { minify?: boolean } = {}): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const b of BUNDLES) {
    const entry = join(root, b.entry);
    await stat(entry).catch(() => {
      throw new Error(`${b.entry} is missing: run 'npm run build' first`);
    });
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
    process.stdout.write('Usage: node dist/scripts/bundle.js [--out DIR] [--minify]\n\nWrites dist/bundle/ota-agent.mjs and dist/bundle/ota-release.mjs (better-sqlite3 stays external).\n');
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
