/**
 * U-Boot env files for tests, the simulator and the qemu boot test: created with mkenvimage
 * (u-boot-tools), read and written with libubootenv's fw_printenv / fw_setenv, each through
 * an fw_env.config naming the file. The format is U-Boot's plain env (CRC32 + NUL-separated
 * name=value, padded), which is what uboot/boot.cmd's `env export -c` writes.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseEnvList } from './grubenv.js';
import { tool } from './tools.js';

/** The size of each env copy (boot.cmd exports with -s 0x4000). */
export const UBOOT_ENV_SIZE = 0x4000;

/** The env files on the boot partition: primary and second copy. */
export const UBOOT_ENV_FILES = { primary: 'otaab.env', backup: 'otaab.bak' } as const;

/** Writes an fw_env.config at `configPath` describing the env file `envPath`. */
export async function writeFwEnvConfig(configPath: string, envPath: string): Promise<void> {
  if (/\s/.test(envPath)) throw new Error(`fw_env.config cannot name a path with white space: ${envPath}`);
  await writeFile(configPath, `# device offset size\n${envPath} 0x0 0x${UBOOT_ENV_SIZE.toString(16)}\n`);
}

/** Creates an env file holding exactly `vars` (mkenvimage). */
export async function createUbootEnv(path: string, vars: Record<string, string>): Promise<void> {
  const text = Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join('');
  await execa(tool('mkenvimage'), ['-s', String(UBOOT_ENV_SIZE), '-o', path, '-'], { input: text });
}

/** Reads an env file through fw_printenv (libubootenv is the judge of the CRC). */
export async function readUbootEnv(configPath: string): Promise<Record<string, string>> {
  const { stdout } = await execa(tool('fw_printenv'), ['-c', configPath], { stdin: 'ignore' });
  return parseEnvList(stdout);
}

/** Sets (or, with an empty value, deletes) variables through fw_setenv -s. */
export async function setUbootEnv(configPath: string, vars: Record<string, string>, scratch: string): Promise<void> {
  const script = join(scratch, `fw-script-${process.pid}-${Date.now()}.txt`);
  await writeFile(script, Object.entries(vars).map(([k, v]) => (v === '' ? `${k}\n` : `${k}=${v}\n`)).join(''));
  await execa(tool('fw_setenv'), ['-c', configPath, '-s', script], { stdin: 'ignore' });
}
