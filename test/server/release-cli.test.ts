/** `ota-release upload` and `publish` against a running server: exit codes 0/1/2 and one-line errors naming the code. */
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GeneratedKey } from '../../shared/signing.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { makeBundle, releaseKey, storageFiles, type BuiltBundle } from './helpers.js';
import { startServer, type ServerProcess } from './process-helpers.js';

let dir: { dir: string; cleanup: () => Promise<void> };
let data: string;
let server: ServerProcess;
let key: GeneratedKey;
let ops: string;
let technician: string;
let b1: BuiltBundle;
let b2: BuiltBundle;
let stranger: BuiltBundle;

const release = (args: string[], env: Record<string, string> = {}) => runCli('release', args, { env: { OTA_TOKEN: ops, ...env } });

function oneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

beforeAll(async () => {
  dir = await tempDir('otaab-release-cli-');
  data = join(dir.dir, 'data');
  key = await releaseKey();
  await writeFile(join(dir.dir, 'ops.pub'), key.publicKey);
  b1 = await makeBundle(join(dir.dir, 'in'), key, { version: '1.0.0', payloadSize: 2 * 1024 * 1024 });
  b2 = await makeBundle(join(dir.dir, 'in'), key, { version: '1.1.0' });
  stranger = await makeBundle(join(dir.dir, 'evil'), await releaseKey('stranger'), { version: '6.6.6' });
  server = await startServer(data, [join(dir.dir, 'ops.pub')], ['--max-bundle-size', String(3 * 1024 * 1024)]);
  const mk = async (role: string) => (await runCli('server', ['token', 'create', '--role', role, '--data', data])).stdout.trim();
  ops = await mk('ops');
  technician = await mk('technician');
});

afterAll(async () => {
  await server.stop();
  await dir.cleanup();
});

describe('ota-release upload', () => {
  it('uploads a bundle (exit 0) and prints version and sha256', async () => {
    const r = await release(['upload', b1.path, '--server', server.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`uploaded gateway 1.0.0  sha256 ${b1.sha256}`);
    expect(r.stderr).toBe('');
    expect((await storageFiles(data)).bundles).toEqual([b1.sha256]);
  });

  it('uploads and publishes with --channel, taking the server from OTA_SERVER, answering JSON', async () => {
    const r = await release(['upload', b2.path, '--channel', 'beta', '--json'], { OTA_SERVER: `${server.url}/` });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: '1.1.0', sha256: b2.sha256, size: b2.size, published: { channel: 'beta', version: '1.1.0', previous: null } });
  });

  it.each([
    ['a version already stored', () => ['upload', b1.path, '--server', server.url], {}, /^ota-release upload: RELEASE_EXISTS: .*1\.0\.0.*\(HTTP 409\)$/],
    ['a bundle signed by an untrusted key', () => ['upload', stranger.path, '--server', server.url], {}, /^ota-release upload: SIGNATURE_UNKNOWN_KEY: .*\(HTTP 400\)$/],
    ['a bad token', () => ['upload', b1.path, '--server', server.url], { OTA_TOKEN: 'otaab_wrong' }, /^ota-release upload: AUTH_INVALID: .*\(HTTP 401\)$/],
    ['a technician token', () => ['upload', b1.path, '--server', server.url], { OTA_TOKEN: 'TECH' }, /^ota-release upload: AUTH_FORBIDDEN: .*\(HTTP 403\)$/],
    ['a missing file', () => ['upload', join(dir.dir, 'nope.otab'), '--server', server.url], {}, /^ota-release upload: CLIENT_FILE_UNREADABLE: .*nope\.otab/],
    ['a server that is not running', () => ['upload', b1.path, '--server', 'http://127.0.0.1:9'], {}, /^ota-release upload: CLIENT_UNREACHABLE: http:\/\/127\.0\.0\.1:9\/v1\/releases: connection refused/],
  ] as const)('fails with exit 1 on %s, naming the code in one line', async (_what, args, env, pattern) => {
    const e: Record<string, string> = { ...env };
    if (e.OTA_TOKEN === 'TECH') e.OTA_TOKEN = technician;
    const r = await release([...args()], e);
    expect(r.code).toBe(1);
    oneLine(r.stderr, pattern);
  });

  it('fails with exit 1 on a tampered bundle, which leaves nothing on the server', async () => {
    const bytes = await readFile(b2.path);
    bytes[bytes.length - 2048] = bytes[bytes.length - 2048]! ^ 0xff;
    const tampered = join(dir.dir, 'tampered.otab');
    await writeFile(tampered, bytes);
    const r = await release(['upload', tampered, '--server', server.url]);
    expect(r.code).toBe(1);
    oneLine(r.stderr, /^ota-release upload: PAYLOAD_HASH_MISMATCH: /);
    expect((await storageFiles(data)).tmp).toEqual([]);
  });

  it('fails with exit 1 on a bundle over the server\'s size cap', async () => {
    const big = await makeBundle(join(dir.dir, 'big'), key, { version: '9.0.0', payloadSize: 4 * 1024 * 1024 });
    const r = await release(['upload', big.path, '--server', server.url]);
    expect(r.code).toBe(1);
    oneLine(r.stderr, /^ota-release upload: UPLOAD_TOO_LARGE: .*\(HTTP 413\)$/);
  });

  it.each([
    ['no OTA_TOKEN', ['upload', 'x.otab', '--server', 'http://127.0.0.1:9'], { OTA_TOKEN: '' }, /OTA_TOKEN/],
    ['no server', ['upload', 'x.otab'], {}, /--server/],
    ['no bundle', ['upload', '--server', 'http://127.0.0.1:9'], {}, /expected 1 argument/],
    ['an unknown option', ['upload', 'x.otab', '--server', 'http://127.0.0.1:9', '--force'], {}, /force/],
    ['a server that is not a URL', ['upload', 'x.otab', '--server', 'ota.example.com'], {}, /not a URL/],
  ] as const)('fails with exit 2 on %s', async (_what, args, env, pattern) => {
    const r = await release([...args], { ...env });
    expect(r.code).toBe(2);
    oneLine(r.stderr, pattern);
  });
});

describe('ota-release publish', () => {
  it('publishes a stored version (exit 0) and names the previous one', async () => {
    const first = await release(['publish', '1.0.0', '--product', 'gateway', '--channel', 'stable', '--server', server.url]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim()).toMatch(/^published gateway 1\.0\.0 to stable \(rollout ro_[0-9a-f]{16}\)$/);
    const second = await release(['publish', '1.1.0', '--product', 'gateway', '--channel', 'stable', '--server', server.url]);
    expect(second.stdout.trim()).toMatch(/^published gateway 1\.1\.0 to stable \(was 1\.0\.0\) \(rollout ro_[0-9a-f]{16}\)$/);
  });

  it('fails with exit 1 on an unknown version, naming the code', async () => {
    const r = await release(['publish', '7.7.7', '--product', 'gateway', '--channel', 'stable', '--server', server.url]);
    expect(r.code).toBe(1);
    oneLine(r.stderr, /^ota-release publish: RELEASE_NOT_FOUND: .*7\.7\.7.*\(HTTP 404\)$/);
  });

  it('fails with exit 1 on a channel name the server refuses', async () => {
    const r = await release(['publish', '1.0.0', '--product', 'gateway', '--channel', 'Stable Channel', '--server', server.url]);
    expect(r.code).toBe(1);
    oneLine(r.stderr, /^ota-release publish: REQUEST_INVALID: .*\(HTTP 400\)$/);
  });

  it('fails with exit 2 without --channel or version', async () => {
    for (const args of [['publish', '1.0.0', '--server', server.url], ['publish', '--channel', 'stable', '--server', server.url]]) {
      const r = await release(args);
      expect(r.code).toBe(2);
      oneLine(r.stderr, /^ota-release publish: /);
    }
  });

  it('fails with exit 1 on a URL outside the API, naming the server\'s code', async () => {
    const r = await release(['publish', '1.0.0', '--product', 'gateway', '--channel', 'stable', '--server', `${server.url}/not-here/`]);
    expect(r.code).toBe(1);
    oneLine(r.stderr, /^ota-release publish: ROUTE_NOT_FOUND: /);
  });

  it('fails with exit 1 on an answer that is not from an otaab server', async () => {
    const proxy = createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad Gateway</body></html>');
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = proxy.address() as AddressInfo;
      const r = await release(['publish', '1.0.0', '--product', 'gateway', '--channel', 'stable', '--server', `http://127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      oneLine(r.stderr, /^ota-release publish: CLIENT_BAD_ANSWER: .*HTTP 502.*Bad Gateway/);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
