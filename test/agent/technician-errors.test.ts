/**
 * A technician at the device: `ota-agent check` against a server that is down says so once;
 * `ota-agent install URL` from an unreachable URL gives up after a bounded time (flag or config
 * key) with DOWNLOAD_GAVE_UP and touches nothing, instead of retrying for hours like the daemon.
 */
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../shared/signing.js';
import { runCli, tempDir } from '../helpers/cli.js';

let dir: { dir: string; cleanup: () => Promise<void> };
let config: string;

async function writeConfig(file: string, server: Record<string, unknown>): Promise<void> {
  const d = dir.dir;
  await writeFile(
    file,
    JSON.stringify({
      device: { id: 'gw-1', compatible: 'x86-gw' },
      slots: [
        { name: 'A', kind: 'fs', path: join(d, 'A') },
        { name: 'B', kind: 'fs', path: join(d, 'B') },
      ],
      boot: { grubenv: join(d, 'grubenv') },
      cmdlinePath: join(d, 'cmdline'),
      trustedKeys: [join(d, 'rel.pub')],
      dataDir: join(d, 'data'),
      server: { url: 'http://127.0.0.1:1', token: 'dev_unused', serverKey: join(d, 'server.pub'), ...server },
    }),
  );
}

beforeAll(async () => {
  dir = await tempDir('otaab-agent-tech-');
  const d = dir.dir;
  for (const s of ['A', 'B', 'data']) await mkdir(join(d, s));
  await execa('grub-editenv', [join(d, 'grubenv'), 'create']);
  await writeFile(join(d, 'cmdline'), 'root=/dev/sda2 ota.slot=A\n');
  const key = await generateSigningKey('test');
  await writeFile(join(d, 'rel.pub'), key.publicKey);
  await writeFile(join(d, 'server.pub'), key.publicKey);
  config = join(d, 'agent.json');
  await writeConfig(config, {});
});
afterAll(async () => {
  await dir.cleanup();
});

describe('ota-agent check, server down', () => {
  it('prints the error once, with its code, and exits 1', async () => {
    const r = await runCli('agent', ['check', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('reports: 0 sent, 0 waiting');
    expect(r.stderr).toMatch(/^ota-agent check: server http:\/\/127\.0\.0\.1:1: SERVER_UNREACHABLE: POST http:\/\/127\.0\.0\.1:1\/v1\/devices\/gw-1\/checkin: connect ECONNREFUSED 127\.0\.0\.1:1$/);
  });
});

describe('ota-agent install from an unreachable URL', () => {
  const grubenv = async () => readFile(join(dir.dir, 'grubenv'), 'utf8');

  it('gives up after --give-up-after seconds with DOWNLOAD_GAVE_UP; nothing is touched', async () => {
    const env = await grubenv();
    const started = Date.now();
    const r = await runCli('agent', ['install', 'http://127.0.0.1:1/x.otab', '--give-up-after', '3', '--config', config]);
    const secs = (Date.now() - started) / 1000;
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n');
    expect(lines.at(-1)).toMatch(/^ota-agent install: DOWNLOAD_GAVE_UP: bundle http:\/\/127\.0\.0\.1:1\/x\.otab: no byte for \d+ s and \d+ retries; giving up \(the limit is 3 s: --give-up-after or server\.installGiveUpSeconds\); the last failure: .*ECONNREFUSED/);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/^download interrupted at byte 0: DOWNLOAD_FAILED: .*; retry \d+ of 1000 in [\d.]+ s$/);
    // Bounded: never waits past the limit (the last wait is skipped, not slept).
    expect(secs).toBeLessThan(3 + 10);
    expect(await grubenv()).toBe(env);
    const st = await runCli('agent', ['status', '--json', '--config', config]);
    expect(JSON.parse(st.stdout)).toMatchObject({ transaction: null });
  });

  it('takes the bound from server.installGiveUpSeconds when no flag is given', async () => {
    const c = join(dir.dir, 'agent-2.json');
    await writeConfig(c, { installGiveUpSeconds: 2 });
    const r = await runCli('agent', ['install', 'http://127.0.0.1:1/x.otab', '--config', c]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DOWNLOAD_GAVE_UP: .*\(the limit is 2 s: /);
  });

  it('refuses a bad --give-up-after as a usage error', async () => {
    const r = await runCli('agent', ['install', 'http://127.0.0.1:1/x.otab', '--give-up-after', 'soon', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/option --give-up-after must be a whole number/);
  });
});
