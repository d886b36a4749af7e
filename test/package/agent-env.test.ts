/**
 * The agent's environment (scripts/agent-env.ts) is what every way of starting it sets: the
 * package's launcher, the systemd unit, and the benchmarks (which import the same list).
 */
import { execa } from 'execa';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENV } from '../../scripts/agent-env.js';
import { LAUNCHER } from '../../scripts/package.js';
import { ROOT, tempDir } from '../helpers/cli.js';

let dir: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir('otaab-agent-env-');
});
afterAll(async () => {
  await dir.cleanup();
});

describe('the agent environment', () => {
  it('is set by the systemd unit', async () => {
    const unit = await readFile(join(ROOT, 'agent', 'otaab-agent.service'), 'utf8');
    for (const [k, v] of Object.entries(AGENT_ENV)) expect(unit).toMatch(new RegExp(`^Environment=${k}=${v}$`, 'm'));
  });

  it('is exported by the launcher to the runtime it starts, unless already set', async () => {
    // The launcher's tree: usr/bin/ota-agent and a "runtime" that prints what it was given.
    const bin = join(dir.dir, 'usr', 'bin');
    await mkdir(bin, { recursive: true });
    await mkdir(join(dir.dir, 'usr', 'lib', 'otaab'), { recursive: true });
    await writeFile(join(bin, 'ota-agent'), LAUNCHER, { mode: 0o755 });
    const fake = join(dir.dir, 'fake-node');
    await writeFile(fake, `#!/bin/sh\n${Object.keys(AGENT_ENV).map((k) => `echo "${k}=$${k}"`).join('\n')}\necho "args=$*"\n`);
    await chmod(fake, 0o755);
    const env = { PATH: '/usr/bin:/bin', OTAAB_NODE: fake };
    const r = await execa(join(bin, 'ota-agent'), ['status'], { env, extendEnv: false });
    for (const [k, v] of Object.entries(AGENT_ENV)) expect(r.stdout).toContain(`${k}=${v}`);
    expect(r.stdout).toContain(`args=${join(dir.dir, 'usr', 'lib', 'otaab', 'ota-agent.mjs')} status`);
    const [first] = Object.keys(AGENT_ENV);
    const kept = await execa(join(bin, 'ota-agent'), [], { env: { ...env, [first!]: '131072' }, extendEnv: false });
    expect(kept.stdout).toContain(`${first}=131072`);
  });
});
