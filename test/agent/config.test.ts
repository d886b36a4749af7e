// The agent config: one field table, defaults in it, unknown keys and bad values named.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isOtaError, type ErrorCode } from '../../shared/errors.js';
import { FIELDS, SERVER_DEFAULTS, childFields, defaultText, type CheckKind, type Field } from '../../agent/config/fields.js';
import { configPath, loadConfig, parseConfig } from '../../agent/config/load.js';
import { ROOT } from '../helpers/cli.js';

const minimal = {
  device: { id: 'gw-1', compatible: 'sim-gw' },
  slots: [
    { name: 'B', kind: 'raw', path: '/dev/sda3' },
    { name: 'A', kind: 'raw', path: '/dev/sda2' },
  ],
  trustedKeys: ['/etc/otaab/keys/release.pub'],
};

function fails(raw: unknown, code: ErrorCode, text: RegExp): void {
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
    expect(c.boot.grubenv).toBe(FIELDS['boot.grubenv'].default);
    expect(c.cmdlinePath).toBe('/proc/cmdline');
    expect(c.rebootCommand).toEqual(['systemctl', 'reboot']);
    expect(c.dataDir).toBe('/var/lib/otaab');
    expect(c.healthChecks).toEqual([]);
    expect(c.healthDeadlineSeconds).toBe(300);
    expect(c.maxTransitions).toBe(50);
    expect(c.checkpointBytes).toBe(64 * 1024 * 1024);
    expect(c.tools).toEqual({ systemctl: 'systemctl', grubEditenv: 'grub-editenv', fwPrintenv: 'fw_printenv', fwSetenv: 'fw_setenv' });
    expect(c.boot.bootloader).toBe('grub');
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
    expect(c.server).toEqual({ url: 'https://ota.example.com', token: 't', pollIntervalSeconds: 3600, stallTimeoutSeconds: 60, downloadRetries: 1000, installGiveUpSeconds: 300, pollJitter: 0.2 });
    // url, token and serverKey may all come from the enrollment file instead.
    expect(parseConfig({ ...minimal, server: { pollIntervalSeconds: 1 } }, '/x/agent.json').server).toEqual({ pollIntervalSeconds: 1, stallTimeoutSeconds: 60, downloadRetries: 1000, installGiveUpSeconds: 300, pollJitter: 0.2 });
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

  // The tests below iterate the field table (agent/config/fields.ts), so a key added there is
  // checked here without a list kept by hand.
  describe('every key of the field table', () => {
    const fields = Object.entries(FIELDS) as [string, Field][];
    const checkOf: Record<CheckKind, Record<string, unknown>> = {
      systemd: { name: 'c', systemd: 'app.service' },
      http: { name: 'c', http: 'http://127.0.0.1/health' },
      command: { name: 'c', command: ['true'] },
    };

    /** `minimal` with `key` set to `value` (or removed, for undefined), and the name errors give the key. */
    function withKey(key: string, value: unknown): { raw: Record<string, unknown>; where: string } {
      // Optional sections with required keys of their own are present, so each key can be tested alone.
      const raw: Record<string, unknown> = structuredClone({ ...minimal, server: { url: 'http://s' }, busyGate: { command: ['is-busy'] } });
      const set = (o: Record<string, unknown>, k: string): void => {
        if (value === undefined) delete o[k];
        else o[k] = value;
      };
      const item = /^(\w+)\[\]\.(\w+)$/.exec(key);
      if (item) {
        const [, list, k] = item as unknown as [string, string, string];
        const f = FIELDS[key as keyof typeof FIELDS] as Field | undefined;
        const first: Record<string, unknown> = list === 'slots' ? { ...minimal.slots[0] } : { ...checkOf[f?.checks?.[0] ?? 'command'] };
        set(first, k);
        raw[list] = list === 'slots' ? [first, minimal.slots[1]] : [first];
        return { raw, where: `${list}[0].${k}` };
      }
      const [a, b] = key.split('.') as [string, string | undefined];
      if (b === undefined) set(raw, a);
      else set((raw[a] = { ...(raw[a] as Record<string, unknown> | undefined) }) as Record<string, unknown>, b);
      return { raw, where: key };
    }

    it('fills each default the table gives', () => {
      for (const [key, f] of fields) {
        if (f.default === undefined) continue;
        const { raw, where } = withKey(key, undefined);
        const got = where.split(/[.[\]]+/).reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], parseConfig(raw, '/etc/otaab/agent.json'));
        expect(got, key).toEqual(f.kind === 'path' ? resolve('/etc/otaab', String(f.default)) : f.default);
      }
      expect(SERVER_DEFAULTS).toEqual(parseConfig({ ...minimal, server: {} }, '/x/agent.json').server);
    });

    it('refuses each required key when it is absent, naming it', () => {
      for (const [key, f] of fields) {
        if (!f.required || key === 'slots[].name') continue;
        const { raw, where } = withKey(key, undefined);
        const msg = f.checks ? /exactly one of "systemd", "http" or "command"/ : new RegExp(`"${where.replace(/[[\].]/g, '\\$&')}" is required`);
        fails(raw, 'CONFIG_INVALID', msg);
      }
    });

    it('refuses each whole number outside its range, naming the key', () => {
      for (const [key, f] of fields) {
        if (f.kind !== 'int') continue;
        const max = f.perCheck?.[f.checks?.[0] ?? 'command']?.max ?? f.max!;
        for (const bad of [f.min! - 1, max + 1, 1.5]) {
          const { raw, where } = withKey(key, bad);
          fails(raw, 'CONFIG_INVALID', new RegExp(`"${where.replace(/[[\].]/g, '\\$&')}" must be a whole number from ${f.min} to ${max}`));
        }
      }
    });

    it('refuses an unknown key in each section, naming the key and the section', () => {
      const sections = ['', ...fields.filter(([, f]) => f.kind === 'section' || f.kind === 'list').map(([k, f]) => (f.kind === 'list' ? `${k}[]` : k))];
      for (const section of sections) {
        expect(childFields(section).length, section).toBeGreaterThan(0);
        const { raw, where } = withKey(section === '' ? 'colour' : `${section}.colour`, 'red');
        const name = where.includes('.') ? where.slice(0, where.lastIndexOf('.')) : 'top level';
        fails(raw, 'CONFIG_UNKNOWN_KEY', new RegExp(`unknown key "colour" in section "${name.replace(/[[\].]/g, '\\$&')}"`));
      }
    });

    it('is the table docs/AGENT.md shows, row by row', async () => {
      const doc = await readFile(join(ROOT, 'docs', 'AGENT.md'), 'utf8');
      const table = doc.slice(doc.indexOf('| key | type | default | meaning |'));
      const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
      expect(rows).toEqual(fields.map(([key, f]) => `| \`${key}\` | ${f.type} | ${defaultText(f)} | ${f.doc} |`));
    });
  });
});

// uboot: the bootloader keys of issue 16.
describe('agent config: bootloader selection', () => {
  const base = { device: { id: 'd', compatible: 'c' }, slots: [{ name: 'A', kind: 'fs', path: '/a' }, { name: 'B', kind: 'fs', path: '/b' }], trustedKeys: ['/k.asc'] };
  it('selects uboot with its fw_env.config files and rpi-tryboot with its partitions', () => {
    const u = parseConfig({ ...base, boot: { bootloader: 'uboot', fwEnvConfig: '/etc/fw1', fwEnvConfigBackup: '/etc/fw2' } }, '/etc/otaab/agent.json');
    expect(u.boot).toMatchObject({ bootloader: 'uboot', fwEnvConfig: '/etc/fw1', fwEnvConfigBackup: '/etc/fw2' });
    const t = parseConfig({ ...base, boot: { bootloader: 'rpi-tryboot', partitionA: 5, partitionB: 6 } }, '/etc/otaab/agent.json');
    expect(t.boot).toMatchObject({ bootloader: 'rpi-tryboot', partitionA: 5, partitionB: 6, autoboot: '/boot/firmware/autoboot.txt', trybootCommand: ['reboot', '0 tryboot'] });
  });
  it('refuses an unknown bootloader and equal partitions', () => {
    expect(() => parseConfig({ ...base, boot: { bootloader: 'lilo' } }, '/x.json')).toThrow(/"boot.bootloader" must be "grub" or "uboot" or "rpi-tryboot"/);
    expect(() => parseConfig({ ...base, boot: { bootloader: 'rpi-tryboot', partitionA: 2, partitionB: 2 } }, '/x.json')).toThrow(/"boot.partitionB" must differ/);
    expect(() => parseConfig({ ...base, boot: { bootloader: 'uboot', fwEnvConfig: '/e/fw', fwEnvConfigBackup: '/e/fw' } }, '/x.json')).toThrow(/"boot.fwEnvConfigBackup" must name another/);
  });
});
