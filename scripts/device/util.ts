/** Small helpers of the device test: the repository root, a command runner, the apt mirror. */
import { basename, dirname, resolve } from 'node:path';
import { execa } from 'execa';

const HERE = dirname(new URL(import.meta.url).pathname);
/** The repository root, whether this runs compiled (dist/scripts/device) or from source. */
export const REPO = resolve(HERE, ...(basename(resolve(HERE, '..', '..')) === 'dist' ? ['..', '..', '..'] : ['..', '..']));

/** Runs a command; throws with the tail of its output when it fails. */
export async function sh(cmd: string, args: string[], opts: { cwd?: string; timeout?: number } = {}): Promise<string> {
  const r = await execa(cmd, args, { reject: false, stdin: 'ignore', all: true, timeout: opts.timeout ?? 1_800_000, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.exitCode ?? r.message}):\n${String(r.all ?? '').split('\n').slice(-20).join('\n')}`);
  return String(r.stdout);
}

export { aptMirror } from '../setup/apt-mirror.js';
