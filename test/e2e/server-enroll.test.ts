// `ota-agent enroll` and `ota-agent check` as real processes against a real server: what is
// stored and how, each refusal with its code (exit 1), re-enrollment, a pinned server key, and
// a check-in printed (and acted on) from the command line.
import { stat, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetDevice } from '../../scripts/fleet/device.js';
import { bootUntilUp } from '../../scripts/sim/simulator.js';
import { generateSigningKey } from '../../shared/signing.js';
import { COMPATIBLE, treeBundle, writeTree } from '../agent/helpers/bundles.js';
import { publish, startStack, type Stack } from './server-helpers.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => stack?.stop());

/** A booted device, not enrolled, its daemon not running. */
async function device(id: string, config: Record<string, unknown> = {}): Promise<FleetDevice> {
  const d = await FleetDevice.create({ root: join(stack.dir, 'devices', id), id, compatible: COMPATIBLE, kind: 'fs', trustedKeys: [stack.key.pubPath], config });
  await bootUntilUp(d.dev);
  return d;
}

describe('ota-agent enroll and check', { timeout: 300_000 }, () => {
  it('enrolls, stores the token and key in a 0600 file, and checks in from the command line', async () => {
    const d = await device('gw-enroll');
    const missing = await d.agent(['check']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^ota-agent check: SERVER_NOT_ENROLLED: /);

    const r = await d.agent(['enroll', '--server', `${stack.server.url}/`, '--token', stack.enroll]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^enrolled gw-enroll \\(${COMPATIBLE}\\) at ${stack.server.url}, channel stable; server key [0-9A-F]{40}; stored in .*server\\.json$`));
    const file = join(d.config.dataDir as string, 'server.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(stored).toMatchObject({ id: 'gw-enroll', url: stack.server.url, channel: 'stable', compatible: COMPATIBLE });
    expect(stored.serverKey).toBe(await readFile(join(stack.data, 'server-key.pub'), 'utf8'));

    const check = await d.agent(['check']);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/^reports: 0 sent, 0 waiting\ncheck-in at .*: answer verified \(expires .*\); directive: none; the daemon checks in every 300 s$/);

    // A release published: `check` installs it up to the reboot, like the daemon.
    const tree = await writeTree(join(stack.dir, 'tree-enroll'), { 'etc/healthy': 'yes\n' });
    await publish(stack, (await treeBundle(stack.dir, stack.key, tree, { version: '1.0.0', type: 'archive' })).path);
    const update = await d.agent(['check', '--json']);
    expect(update.code, update.stderr).toBe(0);
    const report = JSON.parse(update.stdout) as Record<string, Record<string, unknown>>;
    expect(report.checkin).toMatchObject({ verified: true, directive: { type: 'update', version: '1.0.0' } });
    expect(report.action).toMatchObject({ type: 'update', version: '1.0.0', status: 'awaiting-reboot', transaction: { state: 'rebooting', origin: 'server' } });
    expect(await d.reboots()).toBe(1);
    // The reports of the transaction went out with the check.
    const again = await d.agent(['check', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ reports: { pending: 0 }, inFlight: { state: 'rebooting' } });
  });

  it('names what went wrong: a bad token, an id enrolled already, no server, another server key', async () => {
    const d = await device('gw-refused');
    const bad = await d.agent(['enroll', '--server', stack.server.url, '--token', 'not-a-token']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^ota-agent enroll: SERVER_AUTH_FAILED: .* refused the token: use a valid enrollment token .*AUTH_INVALID/);

    expect((await d.agent(['enroll', '--server', stack.server.url, '--token', stack.enroll])).code).toBe(0);
    const first = await readFile(join(d.config.dataDir as string, 'server.json'), 'utf8');
    const twice = await d.agent(['enroll', '--server', stack.server.url, '--token', stack.enroll]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/^ota-agent enroll: ENROLL_DEVICE_EXISTS: device gw-refused is enrolled at .* already; re-enroll it with --replace/);
    const notOps = await d.agent(['enroll', '--server', stack.server.url, '--token', stack.enroll, '--replace']);
    expect(notOps.code).toBe(1);
    expect(notOps.stderr).toMatch(/SERVER_AUTH_FAILED: .*needs an ops token/);
    expect(await readFile(join(d.config.dataDir as string, 'server.json'), 'utf8')).toBe(first);
    const replaced = await d.agent(['enroll', '--server', stack.server.url, '--replace'], { OTA_ENROLL_TOKEN: stack.ops });
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(d.config.dataDir as string, 'server.json'), 'utf8')).token).not.toBe(JSON.parse(first).token);
    expect((await d.agent(['check'])).code).toBe(0);

    const down = await d.agent(['enroll', '--server', 'http://127.0.0.1:9', '--token', stack.enroll]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^ota-agent enroll: SERVER_UNREACHABLE: POST http:\/\/127\.0\.0\.1:9\/v1\/devices\/enroll: /);
    expect((await d.agent(['enroll', '--server', 'ftp://x', '--token', 't'])).code).toBe(2);
    expect((await d.agent(['enroll', '--server', stack.server.url])).code).toBe(2);

    // A device provisioned with another server key refuses this server and stores nothing.
    const foreign = await generateSigningKey('other server <other@example.com>');
    const pinnedKey = join(stack.dir, 'pinned.pub');
    await writeFile(pinnedKey, foreign.publicKey);
    const pinned = await device('gw-pinned', { server: { serverKey: pinnedKey } });
    const mismatch = await pinned.agent(['enroll', '--server', stack.server.url, '--token', stack.enroll]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(/^ota-agent enroll: SERVER_KEY_MISMATCH: .* signs with key [0-9A-F]{40}, but server.serverKey/);
    await expect(stat(join(pinned.config.dataDir as string, 'server.json'))).rejects.toThrow(/ENOENT/);
  });
});
