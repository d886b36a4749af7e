// The agent config: one schema, defaults in one place, unknown keys and bad values named.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isOtaError } from '../../shared/errors.js';
import { DEFAULTS } from '../../agent/config/defaults.js';
import { configPath, loadConfig, parseConfig } from '../../agent/config/load.js';
import '../../agent/errors.js';

const minimal = {
  device: { id: 'gw-1', compatible: 'sim-gw' },
  slots: [
    { name: 'B', kind: 'raw', path: '/dev/sda3' },
    { name: 'A', kind: 'raw', path: '/dev/sda2' },
  ],
  trustedKeys: ['/etc/otaab/keys/release.pub'],
};

function fails(raw: unknown, code: string, text: RegExp): void {
  let err: unknown;
  try {
    parseConfig(raw, '/etc/otaab/agent.json');
  } catch (e) {
    err = e;
  }
  expect(isOtaError(err, code), String(err)).toBe(true);
  expect((err as Error).message).toMatch(text);
}

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('agent config', () => {
  it('fills every default, sorts slots A then B, and freezes the result', () => {
    const c = parseConfig(minimal, '/etc/otaab/agent.json');
    expect(c.slots.map((s) => s.name)).toEqual(['A', 'B']);
    expect(c.boot.grubenv).toBe(DEFAULTS.boot.grubenv);
    expect(c.cmdlinePath).toBe('/proc/cmdline');
    expect(c.rebootCommand).toEqual(['systemctl', 'reboot']);
    expect(c.dataDir).toBe('/var/lib/otaab');
    expect(c.healthChecks).toEqual([]);
    expect(c.healthDeadlineSeconds).toBe(300);
    expect(c.maxTransitions).toBe(50);
    expect(c.checkpointBytes).toBe(64 * 1024 * 1024);
    expect(c.tools).toEqual({ systemctl: 'systemctl', grubEditenv: 'grub-editenv' });
    expect(c.server).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.slots[0])).toBe(true);
    expect(() => {
      (c as { dataDir: string }).dataDir = '/tmp';
    }).toThrow();
  });

  it('fills health check defaults per kind and validates the server section', () => {
    const c = parseConfig(
      {
        ...minimal,
        healthChecks: [
          { name: 'unit', systemd: 'app.service' },
          { name: 'web', http: 'http://127.0.0.1:8080/health' },
          { name: 'cmd', command: ['/bin/true'], timeoutSeconds: 5 },
        ],
        server: { url: 'https://ota.example.com', token: 't' },
      },
      '/x/agent.json',
    );
    expect(c.healthChecks).toEqual([
      { name: 'unit', systemd: 'app.service', restarts: 2, settleSeconds: 5 },
      { name: 'web', http: 'http://127.0.0.1:8080/health', status: 200, timeoutSeconds: 10 },
      { name: 'cmd', command: ['/bin/true'], timeoutSeconds: 5 },
    ]);
    expect(c.server).toEqual({ url: 'https://ota.example.com', token: 't', pollIntervalSeconds: 3600, stallTimeoutSeconds: 60, downloadRetries: 1000, pollJitter: 0.2 });
    // url, token and serverKey may all come from the enrollment file instead.
    expect(parseConfig({ ...minimal, server: { pollIntervalSeconds: 1 } }, '/x/agent.json').server).toEqual({ pollIntervalSeconds: 1, stallTimeoutSeconds: 60, downloadRetries: 1000, pollJitter: 0.2 });
  });

  it('resolves relative paths against the config file directory', () => {
    const c = parseConfig({ ...minimal, dataDir: 'state', trustedKeys: ['keys/a.pub'], slots: [{ name: 'A', kind: 'fs', path: 'a' }, { name: 'B', kind: 'fs', path: '/b' }] }, '/opt/dev/agent.json');
    expect(c.dataDir).toBe('/opt/dev/state');
    expect(c.trustedKeys).toEqual(['/opt/dev/keys/a.pub']);
    expect(c.slots[0]!.path).toBe('/opt/dev/a');
    expect(c.slots[1]!.path).toBe('/b');
  });

  it('rejects unknown keys naming the key and its section', () => {
    fails({ ...minimal, colour: 'red' }, 'CONFIG_UNKNOWN_KEY', /unknown key "colour" in section "top level"/);
    fails({ ...minimal, slots: [{ ...minimal.slots[0], size: 3 }, minimal.slots[1]] }, 'CONFIG_UNKNOWN_KEY', /unknown key "size" in section "slots\[0\]"/);
    fails({ ...minimal, boot: { grubenv: '/g', dir: '/b' } }, 'CONFIG_UNKNOWN_KEY', /unknown key "dir" in section "boot"/);
    fails({ ...minimal, healthChecks: [{ name: 'w', http: 'http://x', statusCode: 200 }] }, 'CONFIG_UNKNOWN_KEY', /"statusCode" in section "healthChecks\[0\]"/);
    fails({ ...minimal, server: { url: 'http://s', poll: 5 } }, 'CONFIG_UNKNOWN_KEY', /"poll" in section "server"/);
  });

  it('rejects bad values naming the key', () => {
    fails({ ...minimal, device: { id: 'x' } }, 'CONFIG_INVALID', /"device.compatible" is required/);
    fails({ ...minimal, device: { id: 'x', compatible: 'y', product: 'no spaces' } }, 'CONFIG_INVALID', /"device.product" must be a product name/);
    fails({ ...minimal, device: { id: 'x', compatible: 'y', attributes: { site: 3 } } }, 'CONFIG_INVALID', /"device.attributes.site" must be a string/);
    expect(parseConfig({ ...minimal, device: { id: 'x', compatible: 'y', product: 'charger', attributes: { site: 'lyon' } } }, '/x/agent.json').device).toEqual({
      id: 'x',
      compatible: 'y',
      product: 'charger',
      attributes: { site: 'lyon' },
    });
    fails({ ...minimal, slots: [minimal.slots[0]] }, 'CONFIG_INVALID', /exactly two slots/);
    fails({ ...minimal, slots: [{ name: 'A', kind: 'raw', path: '/a' }, { name: 'A', kind: 'raw', path: '/b' }] }, 'CONFIG_INVALID', /exactly two slots/);
    fails({ ...minimal, slots: [{ name: 'C', kind: 'raw', path: '/a' }, minimal.slots[1]] }, 'CONFIG_INVALID', /"slots\[0\].name" must be "A" or "B"/);
    fails({ ...minimal, slots: [{ name: 'A', kind: 'fs', path: '/a' }, { name: 'B', kind: 'raw', path: '/b' }] }, 'CONFIG_INVALID', /same kind/);
    fails({ ...minimal, slots: [{ name: 'A', kind: 'disk', path: '/a' }, minimal.slots[1]] }, 'CONFIG_INVALID', /"slots\[0\].kind"/);
    fails({ ...minimal, rebootCommand: 'reboot' }, 'CONFIG_INVALID', /"rebootCommand" must be an array/);
    fails({ ...minimal, rebootCommand: [] }, 'CONFIG_INVALID', /"rebootCommand" must list at least 1/);
    fails({ ...minimal, trustedKeys: [] }, 'CONFIG_INVALID', /"trustedKeys" must list at least 1/);
    fails({ ...minimal, maxTransitions: 2 }, 'CONFIG_INVALID', /"maxTransitions" must be a whole number from 10/);
    fails({ ...minimal, healthDeadlineSeconds: 1.5 }, 'CONFIG_INVALID', /"healthDeadlineSeconds"/);
    fails({ ...minimal, healthChecks: [{ name: 'x', command: ['a'], http: 'http://b' }] }, 'CONFIG_INVALID', /exactly one of "systemd", "http" or "command"/);
    fails({ ...minimal, healthChecks: [{ name: 'x', http: 'ftp://b' }] }, 'CONFIG_INVALID', /"healthChecks\[0\].http" must be an http/);
    fails({ ...minimal, healthChecks: [{ name: 'a b', command: ['x'] }] }, 'CONFIG_INVALID', /"healthChecks\[0\].name"/);
    fails({ ...minimal, healthChecks: [{ name: 'a', command: ['x'] }, { name: 'a', command: ['y'] }] }, 'CONFIG_INVALID', /two checks named "a"/);
    fails({ ...minimal, server: { url: 'ota.example.com' } }, 'CONFIG_INVALID', /"server.url" must be an http/);
    fails({ ...minimal, server: { pollIntervalSeconds: 0 } }, 'CONFIG_INVALID', /"server.pollIntervalSeconds" must be a whole number from 1/);
    fails({ ...minimal, server: { stallTimeoutSeconds: 0 } }, 'CONFIG_INVALID', /"server.stallTimeoutSeconds"/);
    fails([], 'CONFIG_INVALID', /top level must be a JSON object/);
  });

  it('reads the file, refusing unreadable files and duplicate JSON keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otaab-config-'));
    dirs.push(dir);
    const good = join(dir, 'agent.json');
    await writeFile(good, JSON.stringify(minimal));
    expect((await loadConfig(good)).source).toBe(good);
    const dup = join(dir, 'dup.json');
    await writeFile(dup, '{"dataDir": "/a", "dataDir": "/b"}');
    await expect(loadConfig(dup)).rejects.toMatchObject({ code: 'CONFIG_UNREADABLE' });
    await expect(loadConfig(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'CONFIG_UNREADABLE' });
  });

  it('takes --config, then OTA_AGENT_CONFIG, then the default path', () => {
    const saved = process.env.OTA_AGENT_CONFIG;
    try {
      delete process.env.OTA_AGENT_CONFIG;
      expect(configPath()).toBe('/etc/otaab/agent.json');
      process.env.OTA_AGENT_CONFIG = '/env/agent.json';
      expect(configPath()).toBe('/env/agent.json');
      expect(configPath('/opt/agent.json')).toBe('/opt/agent.json');
    } finally {
      if (saved === undefined) delete process.env.OTA_AGENT_CONFIG;
      else process.env.OTA_AGENT_CONFIG = saved;
    }
  });
});
