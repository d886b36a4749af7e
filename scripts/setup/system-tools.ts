import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The parts of otaab whose system tools `scripts/setup/system-tools.txt` lists. */
export type SystemToolsPart = 'build' | 'demo' | 'tests' | 'boot' | 'bench' | 'reliability' | 'package';

// Compiled to dist/scripts/setup/; the shell script and its table stay in the source tree.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The shell script that checks (and as root on Debian installs) the tools of a part. */
export const SYSTEM_TOOLS_SCRIPT = join(ROOT, 'scripts', 'setup', 'system-tools.sh');

/**
 * Runs the system-tools check for `parts` before a script does any work: it installs what is
 * missing (root on Debian) or prints one message naming every missing tool and its package;
 * in that case this process exits 1 right here, with nothing created yet.
 */
export function requireSystemTools(...parts: SystemToolsPart[]): void {
  // An absolute bash: the check must run even when PATH hides the tools (and bash with them).
  const bash = existsSync('/bin/bash') ? '/bin/bash' : 'bash';
  const r = spawnSync(bash, [SYSTEM_TOOLS_SCRIPT, ...parts], { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`otaab setup: cannot run ${SYSTEM_TOOLS_SCRIPT} with bash: ${r.error.message}\n`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(1);
}
