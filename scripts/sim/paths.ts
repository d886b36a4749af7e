import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root, found by walking up from this file: the same code runs from
 * `scripts/sim/` under vitest and from `dist/scripts/sim/` once compiled.
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'grub', 'ota-select.cfg')) && existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the otaab repository (grub/ota-select.cfg) above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The project's `grub/` directory: the one true copy of grub.cfg and ota-select.cfg. */
export function grubSourceDir(): string {
  return join(repoRoot(), 'grub');
}
