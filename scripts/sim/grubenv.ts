import { execa } from 'execa';
import { tool } from './tools.js';

/** The env a fresh device starts with (DESIGN §5): A first, both bootable, no tries used. */
export const DEFAULT_ENV: Readonly<Record<string, string>> = Object.freeze({
  ORDER: 'A B',
  A_OK: '1',
  B_OK: '1',
  A_TRY: '0',
  B_TRY: '0',
  MAX_TRIES: '3',
});

/** Parses `grub-editenv list` output (`NAME=value` per line; the value may hold `=`). */
export function parseEnvList(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** Reads a grubenv file through `grub-editenv PATH list`, so GRUB's own parser is the judge. */
export async function readEnv(path: string): Promise<Record<string, string>> {
  const { stdout } = await execa(tool('grub-editenv'), [path, 'list'], { stdin: 'ignore' });
  return parseEnvList(stdout);
}

/** Sets variables with `grub-editenv PATH set` (creating a 1024-byte env if PATH is missing). */
export async function writeEnv(path: string, vars: Record<string, string>): Promise<void> {
  const assignments = Object.entries(vars).map(([name, value]) => {
    checkName(name);
    // grub-editenv would store the newline and GRUB would read a different variable.
    if (/[\n\r]/.test(value)) throw new Error(`grubenv value of ${name} contains a line break: ${JSON.stringify(value)}`);
    return `${name}=${value}`;
  });
  if (assignments.length === 0) return;
  await execa(tool('grub-editenv'), [path, 'set', ...assignments], { stdin: 'ignore' });
}

/** Removes variables with `grub-editenv PATH unset` (to model a missing variable). */
export async function unsetEnv(path: string, names: readonly string[]): Promise<void> {
  names.forEach(checkName);
  if (names.length === 0) return;
  await execa(tool('grub-editenv'), [path, 'unset', ...names], { stdin: 'ignore' });
}

/** Creates a fresh 1024-byte env file with `grub-editenv create` and sets `vars` in it. */
export async function createEnv(path: string, vars: Record<string, string>): Promise<void> {
  await execa(tool('grub-editenv'), [path, 'create'], { stdin: 'ignore' });
  await writeEnv(path, vars);
}

function checkName(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid grubenv variable name ${JSON.stringify(name)}: use letters, digits and _`);
}
