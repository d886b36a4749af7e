// docs/AGENT.md documents every agent error code with its status and kind, and no other.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentErrors } from '../../agent/errors.js';
import { ROOT } from '../helpers/cli.js';

describe('agent error codes in docs/AGENT.md', () => {
  it('has one row per code, with the catalogue\'s status and kind', async () => {
    const text = await readFile(join(ROOT, 'docs', 'AGENT.md'), 'utf8');
    const rows = [...text.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| (\d{3}) \| (fatal|transient) \|/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
    expect(rows).toEqual(Object.entries(AgentErrors).map(([code, spec]) => [code, spec.status, spec.kind]));
  });

  it('documents every config key the schema accepts', async () => {
    const text = await readFile(join(ROOT, 'docs', 'AGENT.md'), 'utf8');
    const keys = [
      'device.id', 'device.compatible', 'slots', 'slots[].name', 'slots[].kind', 'slots[].path', 'slots[].mount', 'slots[].unmount',
      'boot.grubenv', 'cmdlinePath', 'rebootCommand', 'rebootTimeoutSeconds', 'trustedKeys', 'dataDir', 'healthChecks',
      'healthChecks[].name', 'healthChecks[].systemd', 'healthChecks[].restarts', 'healthChecks[].settleSeconds', 'healthChecks[].http',
      'healthChecks[].status', 'healthChecks[].timeoutSeconds', 'healthChecks[].command', 'healthDeadlineSeconds', 'maxTransitions',
      'checkpointBytes', 'tools.systemctl', 'tools.grubEditenv', 'server.url', 'server.token', 'server.serverKey',
      'server.pollIntervalSeconds', 'server.stallTimeoutSeconds', 'server.downloadRetries', 'server.pollJitter', 'device.attributes', 'device.product',
      'busyGate.command', 'busyGate.timeoutSeconds', 'busyGate.maxWaitSeconds', 'busyGate.recheckSeconds',
    ];
    for (const k of keys) expect(text, k).toContain(`| \`${k}\` |`);
  });
});
