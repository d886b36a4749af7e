// docs/AGENT.md documents every config key the agent accepts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

describe('agent config keys in docs/AGENT.md', () => {
  it('documents every config key the schema accepts', async () => {
    const text = await readFile(join(ROOT, 'docs', 'AGENT.md'), 'utf8');
    const keys = [
      'device.id', 'device.compatible', 'slots', 'slots[].name', 'slots[].kind', 'slots[].path', 'slots[].mount', 'slots[].unmount',
      'boot.grubenv', 'cmdlinePath', 'rebootCommand', 'rebootTimeoutSeconds', 'trustedKeys', 'dataDir', 'healthChecks',
      'healthChecks[].name', 'healthChecks[].systemd', 'healthChecks[].restarts', 'healthChecks[].settleSeconds', 'healthChecks[].http',
      'healthChecks[].status', 'healthChecks[].timeoutSeconds', 'healthChecks[].command', 'healthDeadlineSeconds', 'maxTransitions',
      'checkpointBytes', 'tools.systemctl', 'tools.grubEditenv', 'server.url', 'server.token', 'server.serverKey',
      'server.pollIntervalSeconds', 'server.stallTimeoutSeconds', 'server.downloadRetries',
    ];
    for (const k of keys) expect(text, k).toContain(`| \`${k}\` |`);
  });
});
