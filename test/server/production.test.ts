/**
 * The server for production: `init` is the only command that makes a data directory; start
 * refuses a private release key and names a busy port; HTTPS from the config with a
 * certificate made by openssl, trusted by the ops client through a configured CA; and a backup
 * taken while the server runs restores into a server that serves the same fleet.
 */
import { execa } from 'execa';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNonce, verifyAnswer } from '../../shared/protocol.js';
import { keyringFromArmored, type GeneratedKey } from '../../shared/signing.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { makeBundle, releaseKey, type BuiltBundle } from './helpers.js';
import { startServer, type ServerProcess } from './process-helpers.js';
import { ON_POSTGRES } from '../../scripts/fleet/test-database.js';

let dir: { dir: string; cleanup: () => Promise<void> };
let key: GeneratedKey;
let pub: string;
let b1: BuiltBundle;
const running: ServerProcess[] = [];

beforeAll(async () => {
  dir = await tempDir('otaab-server-prod-');
  key = await releaseKey();
  pub = join(dir.dir, 'ops.pub');
  await writeFile(pub, key.publicKey);
  await writeFile(join(dir.dir, 'ops.key'), key.privateKey);
  b1 = await makeBundle(join(dir.dir, 'in'), key, { version: '1.0.0', payloadSize: 256 * 1024 });
});
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop('SIGKILL')));
  await dir.cleanup();
});

async function start(data: string, extra: string[] = []): Promise<ServerProcess> {
  const s = await startServer(data, [pub], extra);
  running.push(s);
  return s;
}

async function token(data: string, role: string): Promise<string> {
  const r = await runCli('server', ['token', 'create', '--role', role, '--data', data]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('ota-server init', () => {
  it('makes the data directory; every other command refuses one it did not make (exit 1, naming the path)', async () => {
    const typo = join(dir.dir, 'dta');
    for (const args of [['token', 'create', '--role', 'ops'], ['token', 'list'], ['key', 'export'], ['key', 'fingerprint'], ['start', '--port', '0'], ['backup', '--out', join(dir.dir, 'b0')]]) {
      const r = await runCli('server', [...args, '--data', typo]);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toMatch(new RegExp(`^ota-server \\w+: SERVER_DATA_NOT_INITIALISED: data directory ${typo} does not exist: .*ota-server init --data ${typo}'$`));
      expect(existsSync(typo)).toBe(false);
    }
    const data = join(dir.dir, 'fresh');
    const init = await runCli('server', ['init', '--data', data]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/^initialised data directory .*; server key [0-9A-F]{40}$/);
    const fpr = (await runCli('server', ['key', 'fingerprint', '--data', data])).stdout.trim();
    expect(init.stdout).toContain(fpr);
    // Again: nothing changes, the key stays.
    const again = await runCli('server', ['init', '--data', data]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`already initialised: data directory ${data}; server key ${fpr}`);
    expect((await runCli('server', ['token', 'list', '--data', data])).code).toBe(0);
  });

  it('refuses a directory that holds other files', async () => {
    const other = join(dir.dir, 'etc-like');
    await mkdir(other);
    await writeFile(join(other, 'passwd'), 'root:x:0:0\n');
    const r = await runCli('server', ['init', '--data', other]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ota-server init: SERVER_DATA_NOT_EMPTY: data directory .*etc-like holds passwd: /);
    expect(existsSync(join(other, 'server.db'))).toBe(false);
  });
});

describe('ota-server start', () => {
  it('refuses a private key as --release-key (exit 1, one line)', async () => {
    const data = join(dir.dir, 'priv');
    expect((await runCli('server', ['init', '--data', data])).code).toBe(0);
    const r = await runCli('server', ['start', '--data', data, '--port', '0', '--host', '127.0.0.1', '--release-key', join(dir.dir, 'ops.key')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ota-server start: SERVER_RELEASE_KEY_PRIVATE: release key .*ops\.key is a private key: .*$/);
  });

  it('names a busy port (exit 1, one line, no stack)', async () => {
    const data = join(dir.dir, 'busy');
    expect((await runCli('server', ['init', '--data', data])).code).toBe(0);
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runCli('server', ['start', '--data', data, '--port', String(port), '--host', '127.0.0.1', '--release-key', pub, '--log-level', 'silent']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`ota-server start: SERVER_PORT_IN_USE: 127.0.0.1:${port} is in use by another process: stop it or choose another --port\n`.trimEnd());
    } finally {
      blocker.close();
    }
  });
});

describe('HTTPS from the config', () => {
  it('serves TLS with an openssl certificate; the ops client and the agent trust the configured CA, and only it', async () => {
    const tls = join(dir.dir, 'tls');
    await mkdir(tls);
    const ssl = (args: string[]) => execa('openssl', args, { cwd: tls, stdin: 'ignore' });
    await ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=otaab test CA', '-keyout', 'ca.key', '-out', 'ca.pem']);
    await ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr']);
    await writeFile(join(tls, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    await ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.pem']);

    const data = join(dir.dir, 'tls-data');
    expect((await runCli('server', ['init', '--data', data])).code).toBe(0);
    const config = join(dir.dir, 'server.json');
    await writeFile(config, JSON.stringify({ tlsCert: join(tls, 'server.pem'), tlsKey: join(tls, 'server.key') }));
    const server = await start(data, ['--config', config]);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ops = await token(data, 'ops');

    const upload = (env: Record<string, string>) => runCli('release', ['upload', b1.path, '--server', server.url, '--channel', 'stable'], { env: { OTA_TOKEN: ops, ...env } });
    const untrusted = await upload({});
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^ota-release upload: CLIENT_UNREACHABLE: .*certificate/);
    const trusted = await upload({ NODE_EXTRA_CA_CERTS: join(tls, 'ca.pem') });
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(trusted.stdout).toContain('1.0.0');

    // The agent enrolls over the same HTTPS, trusting the same CA and only it.
    const d = join(dir.dir, 'device');
    for (const sub of ['A', 'B', 'data']) await mkdir(join(d, sub), { recursive: true });
    await execa('grub-editenv', [join(d, 'grubenv'), 'create']);
    await writeFile(join(d, 'cmdline'), 'root=/dev/sda2 ota.slot=A\n');
    const agentConfig = join(d, 'agent.json');
    await writeFile(
      agentConfig,
      JSON.stringify({
        device: { id: 'gw-tls', compatible: 'x86-gw' },
        slots: [
          { name: 'A', kind: 'fs', path: join(d, 'A') },
          { name: 'B', kind: 'fs', path: join(d, 'B') },
        ],
        boot: { grubenv: join(d, 'grubenv') },
        cmdlinePath: join(d, 'cmdline'),
        trustedKeys: [pub],
        dataDir: join(d, 'data'),
        server: { serverKey: join(data, 'server-key.pub') },
      }),
    );
    const enrollToken = await token(data, 'enroll');
    const enroll = (env: Record<string, string>) => runCli('agent', ['enroll', '--server', server.url, '--config', agentConfig], { env: { OTA_ENROLL_TOKEN: enrollToken, ...env } });
    const refused = await enroll({});
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^ota-agent enroll: SERVER_UNREACHABLE: .*certificate/);
    const enrolled = await enroll({ NODE_EXTRA_CA_CERTS: join(tls, 'ca.pem') });
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(d, 'data', 'server.json'), 'utf8'))).toMatchObject({ url: server.url });

    // Plain HTTP on the TLS port gets no answer a client could mistake for the API.
    const plain = await fetch(server.url.replace('https:', 'http:') + '/v1/releases').then((r) => r.status, () => 'refused');
    expect(plain).not.toBe(200);
  });

  it('refuses half a TLS config and unreadable files (exit 1, code)', async () => {
    const data = join(dir.dir, 'tls-bad');
    expect((await runCli('server', ['init', '--data', data])).code).toBe(0);
    const half = await runCli('server', ['start', '--data', data, '--port', '0', '--tls-cert', join(dir.dir, 'tls', 'server.pem')]);
    expect(half.code).toBe(1);
    expect(half.stderr).toMatch(/^ota-server start: SERVER_CONFIG_INVALID: tlsCert and tlsKey go together/);
    const missing = await runCli('server', ['start', '--data', data, '--port', '0', '--release-key', pub, '--tls-cert', join(dir.dir, 'nope.pem'), '--tls-key', join(dir.dir, 'nope.key')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^ota-server start: SERVER_TLS_UNUSABLE: TLS certificate .*nope\.pem: cannot be read/);
  });
});

describe('ota-server backup', () => {
  it.skipIf(!ON_POSTGRES)('refuses with SERVER_BACKUP_POSTGRES when the database is in PostgreSQL', async () => {
    const data = join(dir.dir, 'pg-backup');
    expect((await runCli('server', ['init', '--data', data])).code).toBe(0);
    const r = await runCli('server', ['backup', '--data', data, '--out', join(dir.dir, 'pg-backup-out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SERVER_BACKUP_POSTGRES');
    expect(r.stderr).toContain('pg_dump');
    expect(existsSync(join(dir.dir, 'pg-backup-out'))).toBe(false);
  });

  it.skipIf(ON_POSTGRES)('copies a running server consistently; the restored server serves the same fleet', async () => {
    const data = join(dir.dir, 'live');
    const server = await start(data);
    const ops = await token(data, 'ops');
    const enrollToken = await token(data, 'enroll');
    const up = await runCli('release', ['upload', b1.path, '--server', server.url, '--channel', 'stable'], { env: { OTA_TOKEN: ops } });
    expect(up.code, up.stderr).toBe(0);
    const devices: { id: string; token: string }[] = [];
    for (const id of ['gw-a', 'gw-b']) {
      const res = await fetch(`${server.url}/v1/devices/enroll`, {
        method: 'POST',
        headers: { authorization: `Bearer ${enrollToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id, compatible: 'x86-gw' }),
      });
      expect(res.status).toBe(201);
      devices.push({ id, token: ((await res.json()) as { token: string }).token });
    }
    const serverPub = await readFile(join(data, 'server-key.pub'), 'utf8');
    const keyring = await keyringFromArmored([serverPub]);
    const checkin = async (url: string, d: { id: string; token: string }) => {
      const nonce = newNonce();
      const res = await fetch(`${url}/v1/devices/${d.id}/checkin`, {
        method: 'POST',
        headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ nonce, slot: 'A', version: null, state: 'idle' }),
      });
      expect(res.status).toBe(200);
      const answer = await verifyAnswer((await res.json()) as { payload: string; signature: string }, keyring, { device: d.id, nonce });
      return answer.directive;
    };
    const before = await Promise.all(devices.map((d) => checkin(server.url, d)));
    expect(before[0]).toMatchObject({ type: 'update', release: { version: '1.0.0', sha256: b1.sha256 } });

    // While the server runs and a device keeps checking in.
    const out = join(dir.dir, 'backup-1');
    const [backup] = await Promise.all([runCli('server', ['backup', '--data', data, '--out', out]), checkin(server.url, devices[0]!)]);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(/^backed up .* to .*backup-1: database, 1 bundle\(s\) /);
    expect((await runCli('server', ['backup', '--data', data, '--out', out])).stderr).toMatch(/^ota-server backup: SERVER_BACKUP_FAILED: backup .*backup-1: already exists/);
    await server.stop('SIGKILL');

    // Restore: the backup becomes the data directory of a new server.
    const restored = join(dir.dir, 'restored');
    await cp(out, restored, { recursive: true });
    const again = await start(restored);
    const after = await Promise.all(devices.map((d) => checkin(again.url, d)));
    const strip = (d: unknown): unknown => JSON.parse(JSON.stringify(d).replaceAll(server.url, 'URL').replaceAll(again.url, 'URL'));
    expect(after.map(strip)).toEqual(before.map(strip));
    const bundle = await fetch(`${again.url}/v1/bundles/${b1.sha256}`, { headers: { authorization: `Bearer ${devices[1]!.token}` } });
    expect(bundle.status).toBe(200);
    expect(Buffer.from(await bundle.arrayBuffer()).equals(await readFile(b1.path))).toBe(true);
  });
});
