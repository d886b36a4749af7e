/** The README names every command of ota-agent and ota-server, and its first lines say what the two commands need. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commands as agentCommands } from '../../agent/commands/index.js';
import { commands as serverCommands } from '../../server/commands/index.js';
import { ROOT } from '../helpers/cli.js';

const readme = async (): Promise<string> => readFile(join(ROOT, 'README.md'), 'utf8');

describe('README.md', () => {
  it.each([
    ['ota-agent', agentCommands],
    ['ota-server', serverCommands],
  ] as const)('lists every %s command', async (program, commands) => {
    const text = await readme();
    for (const c of commands) expect(text, `${program} ${c.name}`).toMatch(new RegExp(`${program} (?:[a-z-]+ \\| )?${c.name}\\b`));
  });

  it('says in its first lines what npm ci && npm run demo / npm test need', async () => {
    const head = (await readme()).split('\n').slice(0, 30).join('\n');
    expect(head).toContain('npm ci && npm run demo');
    expect(head).toContain('npm ci && npm test');
    expect(head).toContain('scripts/setup/system-tools.sh build');
    expect(head).toContain('Node.js 20');
    expect(head).toContain('OTAAB_NO_APT=1');
    expect(head).toContain('python3, make and g++');
  });
});
