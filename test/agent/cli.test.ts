// The ota-agent CLI as a process: --help everywhere (exit 0), usage errors (exit 2), one-line
// operational errors naming the code (exit 1).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { commands } from '../../agent/commands/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-agent-cli-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('ota-agent CLI', () => {
  it('lists every command of DESIGN §9 it implements', async () => {
    const r = await runCli('agent', ['--help']);
    expect(r.code).toBe(0);
    for (const name of ['status', 'install', 'rollback', 'mark-good', 'mark-bad', 'history', 'daemon', 'enroll', 'check']) expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect((await runCli('agent', [])).code).toBe(2);
    expect((await runCli('agent', ['frobnicate'])).code).toBe(2);
  });

  for (const c of commands) {
    it(`${c.name} --help explains the command and its options`, async () => {
      const r = await runCli('agent', [c.name, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: ota-agent ${c.name}`));
      expect(r.stdout).toContain('--config PATH');
    });
  }

  it('exits 2 on an unknown option or a missing argument', async () => {
    const unknown = await runCli('agent', ['status', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^ota-agent status: Unknown option '--colour'/);
    const missing = await runCli('agent', ['install']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('usage: ota-agent install FILE|URL');
    expect((await runCli('agent', ['history', '--limit', 'lots', '--config', '/x'])).code).toBe(2);
  });

  it('exits 1 with one line naming the code on a bad config', async () => {
    const missing = await runCli('agent', ['status', '--config', join(dir, 'absent.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^ota-agent status: CONFIG_UNREADABLE: config .*absent\.json: cannot be read/);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ device: { id: 'x', compatible: 'y' }, slots: [], trustedKeys: ['/k'], colour: 1 }));
    const r = await runCli('agent', ['status'], { env: { OTA_AGENT_CONFIG: bad } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ota-agent status: CONFIG_UNKNOWN_KEY: config ${bad}: unknown key "colour" in section "top level" (known keys: device, slots, boot, cmdlinePath, rebootCommand, rebootTimeoutSeconds, trustedKeys, dataDir, healthChecks, healthDeadlineSeconds, maxTransitions, checkpointBytes, tools, server, busyGate, metricsTextfile, delta)`);
  });
});
