/** The server config: defaults, precedence, validation naming the key, frozen result. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../shared/cli.js';
import { DEFAULTS, loadConfig, resolveConfig } from '../../server/config.js';

// One directory for every config file of this suite, removed at the end.
let dir: string;
let files = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(content: string): Promise<string> {
  const sub = join(dir, String(++files));
  await mkdir(sub);
  const p = join(sub, 'server.json');
  await writeFile(p, content);
  return p;
}

describe('server config', () => {
  it('is the defaults when nothing is given, and frozen', async () => {
    const c = await loadConfig({}, {});
    expect(c).toEqual(DEFAULTS);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.releaseKeys)).toBe(true);
  });

  it('takes the file, then the environment, then flags', async () => {
    const f = await file(JSON.stringify({ port: 1000, host: 'file-host', releaseKeys: ['keys/a.pub'], answerTtl: 30 }));
    const c = await loadConfig({ config: f, port: '3000' }, { OTA_SERVER_PORT: '2000', OTA_SERVER_HOST: 'env-host', OTA_SERVER_PUBLIC_URL: 'https://ota.example.com/' });
    expect(c).toMatchObject({ port: 3000, host: 'env-host', answerTtl: 30, publicUrl: 'https://ota.example.com' });
    // Paths in a file are relative to the file.
    expect(c.releaseKeys).toEqual([resolve(f, '..', 'keys/a.pub')]);
  });

  it('reads the file named by OTA_SERVER_CONFIG and several keys from the environment', async () => {
    const f = await file(JSON.stringify({ data: 'd' }));
    const c = await loadConfig({}, { OTA_SERVER_CONFIG: f, OTA_SERVER_RELEASE_KEYS: '/k/a.pub,/k/b.pub' });
    expect(c.data).toBe(resolve(f, '..', 'd'));
    expect(c.releaseKeys).toEqual(['/k/a.pub', '/k/b.pub']);
  });

  it('takes repeated --release-key flags', async () => {
    const c = await loadConfig({ 'release-key': ['/a.pub', '/b.pub'] }, {});
    expect(c.releaseKeys).toEqual(['/a.pub', '/b.pub']);
  });

  it('refuses an unknown key in the file, naming it', async () => {
    const f = await file(JSON.stringify({ prot: 80 }));
    await expect(loadConfig({ config: f }, {})).rejects.toMatchObject({ code: 'SERVER_CONFIG_UNKNOWN_KEY', message: expect.stringContaining('"prot"') });
  });

  it('refuses wrong values, naming the key and where it came from', async () => {
    const f = await file(JSON.stringify({ port: '80' }));
    await expect(loadConfig({ config: f }, {})).rejects.toMatchObject({ code: 'SERVER_CONFIG_INVALID', message: expect.stringContaining('key "port"') });
    await expect(loadConfig({}, { OTA_SERVER_PORT: '70000' })).rejects.toMatchObject({ code: 'SERVER_CONFIG_INVALID', message: expect.stringContaining('OTA_SERVER_PORT') });
    await expect(loadConfig({}, { OTA_SERVER_LOG_LEVEL: 'loud' })).rejects.toMatchObject({ code: 'SERVER_CONFIG_INVALID' });
    await expect(loadConfig({ 'public-url': 'ftp://x' }, {})).rejects.toBeInstanceOf(UsageError);
    await expect(loadConfig({ 'max-bundle-size': '12x' }, {})).rejects.toThrow(/--max-bundle-size/);
  });

  it('refuses a file that is not a JSON object or has duplicate keys', async () => {
    await expect(loadConfig({ config: await file('[1]') }, {})).rejects.toMatchObject({ code: 'SERVER_CONFIG_UNREADABLE' });
    await expect(loadConfig({ config: await file('{"port": 1, "port": 2}') }, {})).rejects.toMatchObject({ code: 'SERVER_CONFIG_UNREADABLE' });
    await expect(loadConfig({ config: '/nonexistent/server.json' }, {})).rejects.toMatchObject({ code: 'SERVER_CONFIG_UNREADABLE' });
  });

  it('ignores unrelated environment variables but names a misspelt OTA_SERVER_* one', async () => {
    expect(() => resolveConfig([{ source: 'env', name: 'environment', values: { PATH: '/bin', OTA_SERVER_CONFIG: '' }, base: '/' }])).not.toThrow();
    await expect(loadConfig({}, { OTA_SERVER_PROT: '80', PATH: '/bin', OTA_SERVER: 'http://x' })).rejects.toMatchObject({
      code: 'SERVER_CONFIG_UNKNOWN_KEY',
      message: expect.stringContaining('OTA_SERVER_PROT'),
    });
  });
});
