/** The fleet commands of `ota-release` against a running server: output, --json, exit codes 0/1/2. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.js';
import { makeBundle, releaseKey } from './helpers.js';
import { startServer, type ServerProcess } from './process-helpers.js';

let dir: { dir: string; cleanup: () => Promise<void> };
let server: ServerProcess;
let ops: string;

const release = (args: string[]) => runCli('release', [...args, '--server', server.url], { env: { OTA_TOKEN: ops } });
const json = async <T>(args: string[]): Promise<T> => {
  const r = await release([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  dir = await tempDir('otaab-fleet-cli-');
  const data = join(dir.dir, 'data');
  const key = await releaseKey();
  await writeFile(join(dir.dir, 'ops.pub'), key.publicKey);
  server = await startServer(data, [join(dir.dir, 'ops.pub')]);
  const mk = async (role: string) => (await runCli('server', ['token', 'create', '--role', role, '--data', data])).stdout.trim();
  ops = await mk('ops');
  const enroll = await mk('enroll');
  for (const [product, compatible] of [['gateway', 'x86-gw'], ['charger', 'evc']] as const) {
    const b = await makeBundle(join(dir.dir, 'in', product), key, { product, version: '1.0.0', compatible: [compatible] });
    const up = await release(['upload', b.path]);
    expect(up.code, up.stderr).toBe(0);
  }
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${server.url}/v1/devices/enroll`, {
      method: 'POST',
      headers: { authorization: `Bearer ${enroll}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: `evc-${i}`, compatible: 'evc', product: 'charger' }),
    });
    expect(res.status).toBe(201);
  }
});

afterAll(async () => {
  await server.stop();
  await dir.cleanup();
});

describe('ota-release fleet commands', () => {
  it('lists releases of both products with the same version, and shows one', async () => {
    const r = await release(['releases']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^gateway\s+1\.0\.0/m);
    expect(r.stdout).toMatch(/^charger\s+1\.0\.0/m);
    const only = await json<{ releases: { product: string }[] }>(['releases', '--product', 'charger']);
    expect(only.releases.map((x) => x.product)).toEqual(['charger']);
    const one = await release(['release', 'charger', '1.0.0']);
    expect(one.stdout).toContain('charger 1.0.0');
    const missing = await release(['release', 'charger', '9.9.9']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/RELEASE_NOT_FOUND/);
  });

  it('tags devices and filters the fleet by tag', async () => {
    const r = await release(['tag', 'evc-0', 'evc-1', '--add', 'site-lyon']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('evc-0: site-lyon\nevc-1: site-lyon');
    const list = await json<{ devices: { id: string }[] }>(['devices', '--tag', 'site-lyon']);
    expect(list.devices.map((d) => d.id)).toEqual(['evc-0', 'evc-1']);
    const text = await release(['devices', '--product', 'charger']);
    expect(text.stdout).toContain('6 device(s)');
    expect((await release(['tag', 'evc-0'])).code).toBe(2);
    const unknown = await release(['tag', 'evc-0', 'nope', '--add', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/DEVICE_NOT_FOUND/);
    // All or nothing: evc-0 did not get the tag.
    expect((await json<{ device: { tags: string[] } }>(['device', 'evc-0'])).device.tags).toEqual(['site-lyon']);
  });

  it('creates, shows, pauses, resumes and aborts a rollout', async () => {
    const ro = await json<{ id: string; counts: { members: number }[]; state: string }>(['rollout', 'create', '--product', 'charger', '--version', '1.0.0', '--phases', '2,100%', '--seed', '5']);
    expect(ro.counts.map((c) => c.members)).toEqual([2, 4]);
    const show = await release(['rollout', 'show', ro.id]);
    expect(show.stdout).toContain(`rollout ${ro.id}: charger 1.0.0 (staged) running`);
    expect(show.stdout).toMatch(/phase 1 2 devices\s+open \(last\)\s+2 devices/);
    expect((await json<{ state: string }>(['rollout', 'pause', ro.id])).state).toBe('paused');
    expect((await json<{ state: string }>(['rollout', 'resume', ro.id])).state).toBe('running');
    const again = await release(['rollout', 'resume', ro.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/ROLLOUT_STATE/);
    expect((await json<{ state: string }>(['rollout', 'abort', ro.id])).state).toBe('aborted');
    const list = await release(['rollout', 'list']);
    expect(list.stdout).toMatch(new RegExp(`${ro.id}\\s+charger\\s+1\\.0\\.0\\s+staged\\s+aborted`));
    expect((await release(['rollout', 'show', 'ro_0000000000000000'])).code).toBe(1);
    expect((await release(['rollout', 'frobnicate'])).code).toBe(2);
    expect((await release(['rollout', 'create', '--product', 'charger', '--version', '1.0.0', '--phases', '10%,x'])).code).toBe(2);
    const bad = await release(['rollout', 'create', '--product', 'charger', '--version', '1.0.0', '--phases', '50%']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ROLLOUT_INVALID: .*last phase/);
  });

  it('sets, lists and deletes maintenance windows; refuses an unknown time zone', async () => {
    const w = await release(['window', 'set', 'lyon-night', '--tag', 'site-lyon', '--days', 'mon,tue', '--start', '02:00', '--duration', '120', '--tz', 'Europe/Paris']);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toContain('window lyon-night: devices tagged site-lyon, mon,tue from 02:00 for 120 min (Europe/Paris)');
    expect((await json<{ windows: { name: string }[] }>(['window', 'list'])).windows.map((x) => x.name)).toEqual(['lyon-night']);
    const tz = await release(['window', 'set', 'x', '--tag', 't', '--days', 'mon', '--start', '02:00', '--duration', '60', '--tz', 'Mars/Olympus']);
    expect(tz.code).toBe(1);
    expect(tz.stderr).toMatch(/WINDOW_INVALID/);
    expect((await release(['window', 'delete', 'lyon-night'])).code).toBe(0);
    expect((await release(['window', 'delete', 'lyon-night'])).code).toBe(1);
    expect((await release(['window', 'set', 'x', '--tag', 't'])).code).toBe(2);
  });

  it('asks for a rollback and shows it waiting on the device', async () => {
    const r = await release(['rollback', 'evc-3', '--note', 'customer complaint']);
    expect(r.code, r.stderr).toBe(0);
    const d = await release(['device', 'evc-3']);
    expect(d.stdout).toMatch(/rollback rb_[0-9a-f]+ waiting requested/);
    expect((await release(['rollback', 'evc-3'])).stderr).toMatch(/ROLLBACK_PENDING/);
  });
});
