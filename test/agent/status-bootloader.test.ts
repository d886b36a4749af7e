/**
 * `ota-agent status` names the boot environment by the device's bootloader: "grubenv" on a GRUB
 * device (grub-editenv), "U-Boot env" on a U-Boot one (real env files read by fw_printenv),
 * and the JSON says which backend the variables came from.
 */
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUbootEnv, writeFwEnvConfig } from '../../scripts/sim/ubootenv.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { makeKey } from './helpers/keys.js';

let dir: { dir: string; cleanup: () => Promise<void> };
let pub: string;
beforeAll(async () => {
  dir = await tempDir('otaab-status-boot-');
  pub = (await makeKey(dir.dir)).pubPath;
});
afterAll(async () => dir.cleanup());

/** A device of file slots booted from A, with `boot` as its boot section. */
async function device(name: string, boot: (d: string) => Promise<Record<string, unknown>>): Promise<string> {
  const d = join(dir.dir, name);
  for (const sub of ['A', 'B', 'data']) await mkdir(join(d, sub), { recursive: true });
  await writeFile(join(d, 'cmdline'), 'root=/dev/sda2 ota.slot=A\n');
  const config = join(d, 'agent.json');
  await writeFile(
    config,
    JSON.stringify({
      device: { id: `gw-${name}`, compatible: 'x86-gw' },
      slots: [
        { name: 'A', kind: 'fs', path: join(d, 'A') },
        { name: 'B', kind: 'fs', path: join(d, 'B') },
      ],
      boot: await boot(d),
      cmdlinePath: join(d, 'cmdline'),
      trustedKeys: [pub],
      dataDir: join(d, 'data'),
    }),
  );
  return config;
}

describe('ota-agent status labels the boot environment by the bootloader', () => {
  it('U-Boot: "U-Boot env", bootloader "uboot" in the JSON', async () => {
    const config = await device('uboot', async (d) => {
      const vars = { ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '3' };
      for (const [env, cfg] of [['otaab.env', 'fw_env.config'], ['otaab.bak', 'fw_env.backup.config']] as const) {
        await createUbootEnv(join(d, env), vars);
        await writeFwEnvConfig(join(d, cfg), join(d, env));
      }
      return { bootloader: 'uboot', fwEnvConfig: join(d, 'fw_env.config'), fwEnvConfigBackup: join(d, 'fw_env.backup.config') };
    });
    const text = await runCli('agent', ['status', '--config', config]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^U-Boot env {3}.*ORDER="A B"/m);
    expect(text.stdout).not.toContain('grubenv');
    const json = await runCli('agent', ['status', '--json', '--config', config]);
    expect(JSON.parse(json.stdout)).toMatchObject({ bootloader: 'uboot', bootEnv: { ORDER: 'A B', MAX_TRIES: '3' } });
  });

  it('GRUB: "grubenv", bootloader "grub" in the JSON', async () => {
    const config = await device('grub', async (d) => {
      await execa('grub-editenv', [join(d, 'grubenv'), 'set', 'ORDER=A B', 'A_OK=1', 'B_OK=1', 'A_TRY=0', 'B_TRY=0', 'MAX_TRIES=3']);
      return { grubenv: join(d, 'grubenv') };
    });
    const text = await runCli('agent', ['status', '--config', config]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^grubenv {6}.*ORDER="A B"/m);
    const json = await runCli('agent', ['status', '--json', '--config', config]);
    expect(JSON.parse(json.stdout)).toMatchObject({ bootloader: 'grub', bootEnv: { ORDER: 'A B' } });
  });
});
