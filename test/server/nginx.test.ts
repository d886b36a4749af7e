/**
 * The shipped reverse-proxy config, server/nginx/otaab.conf, in front of a real `ota-server`:
 * Debian's nginx runs that file with only its "site:" values replaced (port, name, certificate,
 * upstream), terminating TLS with a self-signed certificate made by openssl. Through it: a
 * bundle larger than nginx's default body limit is uploaded with `ota-release upload`, a device
 * enrolls and checks in (answer signature verified, bundle URLs on the proxy), a ranged bundle
 * download comes back 206, and the agent installs the release, reboots and commits it.
 */
import { execa, type ResultPromise } from 'execa';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNonce, verifyAnswer } from '../../shared/protocol.js';
import { keyringFromArmored } from '../../shared/signing.js';
import { bootUntilUp } from '../../scripts/sim/simulator.js';
import { pseudoRandom, treeBundle, writeTree } from '../agent/helpers/bundles.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { deviceView, enrolledDevice, startStack, waitDevice, type Stack } from '../e2e/server-helpers.js';

const SHIPPED = join(ROOT, 'server', 'nginx', 'otaab.conf');
let stack: Stack;
let proxyUrl: string;
let ca: string;
let nginx: ResultPromise | undefined;
let nginxDir: string;

/** A loopback port nothing listens on right now. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The shipped file with each "site:" line's value replaced; every other line as it is. */
function renderSite(text: string, site: Record<string, string>): string {
  const seen = new Set<string>();
  const out = text.split('\n').map((line) => {
    if (!/# site:/.test(line)) return line;
    const m = /^(\s*)(\S+)(\s+)(.+?);(\s*#.*)$/.exec(line);
    if (!m || site[m[2]!] === undefined) throw new Error(`no test value for the site line: ${line}`);
    seen.add(m[2]!);
    return `${m[1]}${m[2]}${m[3]}${site[m[2]!]};${m[5]}`;
  });
  const unused = Object.keys(site).filter((k) => !seen.has(k));
  if (unused.length) throw new Error(`site values with no "site:" line: ${unused.join(', ')}`);
  return out.join('\n');
}

/** GET over HTTPS with the test certificate as the only trusted one. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, ca: caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** POST JSON over HTTPS with the test certificate as the only trusted one. */
function postJson(url: string, token: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = request(url, { method: 'POST', ca: caPem, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(data.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

let caPem: string;
let nginxLog = '';

beforeAll(async () => {
  const port = await freePort();
  proxyUrl = `https://127.0.0.1:${port}`;
  // The server behind the proxy: loopback only, its public URL the proxy's.
  stack = await startStack(['--public-url', proxyUrl]);
  nginxDir = join(stack.dir, 'nginx');
  await mkdir(join(nginxDir, 'logs'), { recursive: true });
  // nginx's workers run as "nobody" when the master is root: they must reach their temp dirs.
  await chmod(stack.dir, 0o755);
  await chmod(nginxDir, 0o755);

  // A self-signed certificate for 127.0.0.1, trusted by the clients through NODE_EXTRA_CA_CERTS.
  ca = join(nginxDir, 'cert.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(nginxDir, 'key.pem'), '-out', ca], { stdin: 'ignore' });
  caPem = await readFile(ca, 'utf8');

  const upstream = new URL(stack.server.url);
  const site = renderSite(await readFile(SHIPPED, 'utf8'), {
    server: `127.0.0.1:${upstream.port}`,
    listen: `127.0.0.1:${port} ssl`,
    server_name: '127.0.0.1',
    ssl_certificate: ca,
    ssl_certificate_key: join(nginxDir, 'key.pem'),
  });
  await writeFile(join(nginxDir, 'otaab.conf'), site);
  // The http context a distribution's nginx.conf gives, made to live in the test's directory.
  await writeFile(
    join(nginxDir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${join(nginxDir, 'nginx.pid')};`,
      `error_log ${join(nginxDir, 'logs', 'error.log')} info;`,
      'events { worker_connections 64; }',
      'http {',
      `  access_log ${join(nginxDir, 'logs', 'access.log')};`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(nginxDir, `${t}_temp`)};`),
      `  include ${join(nginxDir, 'otaab.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-p', `${nginxDir}/`, '-c', join(nginxDir, 'nginx.conf')];
  const t = await execa('nginx', [...args, '-t'], { reject: false, stdin: 'ignore', all: true });
  if (t.exitCode !== 0) throw new Error(`nginx -t refused the config:\n${String(t.all)}`);
  nginx = execa('nginx', args, { reject: false, stdin: 'ignore', all: true, buffer: false });
  nginx.all?.setEncoding('utf8').on('data', (d: string) => (nginxLog += d));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await get(`${proxyUrl}/v1/releases`, {}).then((r) => r.status, () => 0);
    if (up !== 0) break;
    if (Date.now() > deadline || nginx.exitCode !== null) throw new Error(`nginx did not answer on ${proxyUrl}:\n${nginxLog}${await readFile(join(nginxDir, 'logs', 'error.log'), 'utf8').catch(() => '')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    nginx.kill('SIGQUIT');
    await nginx;
  }
  await stack?.stop();
});

describe('server/nginx/otaab.conf in front of ota-server', { timeout: 300_000 }, () => {
  it('changes nothing but its "site:" lines in the test', async () => {
    const shipped = (await readFile(SHIPPED, 'utf8')).split('\n');
    const used = (await readFile(join(nginxDir, 'otaab.conf'), 'utf8')).split('\n');
    expect(used.length).toBe(shipped.length);
    const changed = shipped.flatMap((l, i) => (l === used[i] ? [] : [l.trim().split(/\s+/)[0]]));
    expect(changed.sort()).toEqual(['listen', 'server', 'server_name', 'ssl_certificate', 'ssl_certificate_key']);
  });

  it('passes an upload over 1 MiB, a verified check-in, a 206 ranged download and an agent install', async () => {
    const env = { NODE_EXTRA_CA_CERTS: ca };
    // A bundle of about 3 MiB: nginx's default client_max_body_size (1 MiB) would refuse it.
    const tree = await writeTree(join(stack.dir, 'tree-1.0.0'), { 'etc/healthy': 'release 1.0.0\n', 'usr/share/blob': pseudoRandom(3 * 1024 * 1024, 7) });
    const bundle = (await treeBundle(stack.dir, stack.key, tree, { version: '1.0.0', type: 'archive' })).path;
    const bytes = await readFile(bundle);
    expect(bytes.length).toBeGreaterThan(2 * 1024 * 1024);
    const up = await runCli('release', ['upload', bundle, '--server', proxyUrl, '--channel', 'stable'], { env: { OTA_TOKEN: stack.ops, ...env } });
    expect(up.code, `${up.stderr}\n${nginxLog}`).toBe(0);
    expect(up.stdout).toContain('1.0.0');

    // A device enrolls through the proxy; its daemon is not running yet.
    const d = await enrolledDevice(stack, { id: 'gw-nginx', url: proxyUrl, env, start: false });
    const enrolment = JSON.parse(await readFile(join(d.config.dataDir as string, 'server.json'), 'utf8')) as { token: string; url: string };
    expect(enrolment.url).toBe(proxyUrl);

    // A check-in by hand: the answer's signature verifies with the server key; its bundle URL is the proxy's.
    const nonce = newNonce();
    const checkin = await postJson(`${proxyUrl}/v1/devices/gw-nginx/checkin`, enrolment.token, { nonce, slot: 'A', version: null, state: 'idle' });
    expect(checkin.status).toBe(200);
    const keyring = await keyringFromArmored([await readFile(join(stack.data, 'server-key.pub'), 'utf8')]);
    const answer = await verifyAnswer(checkin.json as { payload: string; signature: string }, keyring, { device: 'gw-nginx', nonce });
    expect(answer.directive).toMatchObject({ type: 'update', release: { version: '1.0.0' } });
    const sha256 = (answer.directive as { release: { sha256: string } }).release.sha256;
    expect(JSON.stringify(answer.directive)).toContain(`${proxyUrl}/v1/bundles/${sha256}`);
    expect(JSON.stringify(answer.directive)).not.toContain(stack.server.url);

    // A ranged download through the proxy: 206, the server's Content-Range, exactly those bytes.
    const from = 1024 * 1024 + 17;
    const ranged = await get(`${proxyUrl}/v1/bundles/${sha256}`, { authorization: `Bearer ${enrolment.token}`, range: `bytes=${from}-${from + 65535}` });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes ${from}-${from + 65535}/${bytes.length}`);
    expect(ranged.body.equals(bytes.subarray(from, from + 65536))).toBe(true);
    const whole = await get(`${proxyUrl}/v1/bundles/${sha256}`, { authorization: `Bearer ${enrolment.token}` });
    expect(whole.status).toBe(200);
    expect(whole.body.equals(bytes)).toBe(true);

    // The device boots slot A; the agent checks in through the proxy, verifies, downloads and
    // installs up to the reboot...
    expect((await bootUntilUp(d.dev)).slot).toBe('A');
    const check = await d.agent(['check', '--json']);
    expect(check.code, `${check.stderr}\n${nginxLog}`).toBe(0);
    const report = JSON.parse(check.stdout) as Record<string, unknown>;
    expect(report.checkin).toMatchObject({ verified: true, directive: { type: 'update', version: '1.0.0' } });
    expect(report.action).toMatchObject({ type: 'update', version: '1.0.0', status: 'awaiting-reboot' });
    expect(await d.reboots()).toBe(1);
    // ...then boots the new slot, passes its health check, commits and reports, all through the proxy.
    d.start();
    await waitDevice(stack, d.id, '1.0.0 committed', (v) => v.device.transaction === null && v.device.version === '1.0.0' && v.device.lastOutcome?.outcome === 'success');
    expect((await deviceView(stack, d.id)).device.slot).toBe('B');

    // Every one of those requests went through nginx.
    const access = await readFile(join(nginxDir, 'logs', 'access.log'), 'utf8');
    expect(access).toMatch(/"POST \/v1\/releases[^"]* HTTP\/1\.1" 20\d/);
    expect(access).toMatch(/"GET \/v1\/bundles\/[0-9a-f]{64} HTTP\/1\.1" 206/);
    expect(access).toMatch(/"POST \/v1\/devices\/gw-nginx\/reports HTTP\/1\.1" 20\d/);
  });
});
