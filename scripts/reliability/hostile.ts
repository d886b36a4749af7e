/**
 * Hostile input against a real `ota-server` over HTTP and against the real `ota-agent`:
 * every route with every role, path and SQL meta-characters in ids, wrong types, unknown
 * fields, huge and malformed bodies, and the hostile-bundle corpus through `ota-release
 * upload` and `ota-agent install`. Each must be refused (a 4xx, or exit 1 with a one-line
 * error naming a code), and nothing may be stored: after each family the server's bundles/,
 * tmp/, its database row counts and what its API shows are compared with before; a device's
 * slots and grubenv are compared byte for byte around each install.
 */
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCorpus, type Corpus, type CorpusCase } from '../corpus/corpus.js';
import { FleetDevice } from '../fleet/device.js';
import { api } from '../fleet/server.js';
import { bootUntilUp, readEnv } from '../sim/simulator.js';
import { END_OF_ARCHIVE, header, pad } from '../../shared/tar-writer.js';
import { fillPattern, slotFingerprint } from './digest.js';
import { rawRequest, type RawAnswer, type RawRequest } from './http.js';
import { makeRow, type Row } from './results.js';
import { COMPATIBLE, RELEASE_CLI, enrollDevice, fsRelease, makeReleaseKey, rawRelease, since, startServer, workDir, type ReleaseKey, type Server } from './world.js';

/** Options of the hostile part. */
export interface HostileOptions {
  /** Which rows to run (ids like `hostile:ids`); all when empty. */
  want: (id: string) => boolean;
  log: (line: string) => void;
  mode: 'full' | 'fast';
}

type Cred = 'none' | 'bogus' | 'ops' | 'technician' | 'enroll' | 'device' | 'other-device';
type FieldType = 'string' | 'string|null' | 'boolean' | 'integer' | 'object';

/** One route of DESIGN §8 as the hostile part drives it. */
interface Route {
  name: string;
  method: string;
  path: string;
  roles: Cred[];
  /** A valid body: sent as is it would store something, so a refusal is what keeps the server unchanged. */
  body?: () => Record<string, unknown>;
  /** Body fields (dotted paths) and their JSON types. */
  fields?: Record<string, FieldType>;
  /** Route parameter for the id family, and a way to build the path with a hostile value. */
  param?: { name: string; build: (v: string) => string };
}

const MAX_BUNDLE = 8 << 20;
const MAX_JSON = 256 * 1024;

/** Ids carrying path, SQL, shell and encoding meta-characters; each one URL-encoded in a path. */
export const HOSTILE_IDS: readonly string[] = [
  '../../etc/passwd',
  '..',
  '.',
  'd-1/../d-2',
  '..\\..\\server.db',
  "d-1' OR '1'='1",
  "d-1'; DROP TABLE devices; --",
  'd-1" OR ""="',
  'd-1) UNION SELECT token_hash FROM tokens --',
  '%',
  '_',
  '*',
  'd-1\u0000',
  'd-1\n',
  'd-1 ',
  ' d-1',
  '$(reboot)',
  '`reboot`',
  'd-1;reboot',
  'd-1|reboot',
  '-rf',
  '<script>alert(1)</script>',
  '{"$gt":""}',
  'ｄ-1',
  'd-1\u202e',
  'x'.repeat(129),
  '',
];

const WRONG: Record<FieldType, unknown[]> = {
  string: [null, 0, 1.5, true, [], {}, ['a']],
  'string|null': [0, true, [], {}, ['a']],
  boolean: [null, 0, 1, 'true', [], {}],
  integer: [null, '1', 1.5, -1, true, [], {}, 2 ** 64],
  object: [null, 'x', 1, true, [], ['x']],
};

function setPath(body: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  const keys = path.split('.');
  let o: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) {
    o[k] ??= {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys.at(-1)!] = value;
  return copy;
}

/** The whole part: one row per family. */
export async function runHostile(opts: HostileOptions): Promise<Row[]> {
  const { dir, cleanup } = await workDir('hostile');
  const rows: Row[] = [];
  try {
    const corpus = await makeCorpus(join(dir, 'corpus'));
    const key = await makeReleaseKey(join(dir, 'keys'));
    const server = await startServer(dir, [...corpus.keyring, key.pubPath], ['--max-bundle-size', String(MAX_BUNDLE), '--max-json-body', String(MAX_JSON)]);
    try {
      const ctx = await setUp(dir, server, key);
      const families: [string, string, (c: Ctx) => Promise<Check[]>][] = [
        ['hostile:roles', 'every route with every credential (none, bogus, each role, another device)', roles],
        ['hostile:ids', 'path, SQL and shell meta-characters in every id (path and body)', ids],
        ['hostile:types', 'wrong JSON types in every body field, and bodies that are not objects', types],
        ['hostile:unknown-fields', 'unknown fields at every level (incl. __proto__, constructor)', unknownFields],
        ['hostile:huge', 'huge bodies (1 and 32 MiB JSON, 16 MiB uploads, length and chunked), deep nesting, huge headers', huge],
        ['hostile:malformed', 'malformed JSON, wrong content types, bad ranges, an upload cut by the client', malformed],
      ];
      for (const [id, what, fn] of families) {
        if (!opts.want(id)) continue;
        const t0 = Date.now();
        opts.log(`${id}: ${what}`);
        rows.push(httpRow(id, what, await fn(ctx), t0, opts.mode));
      }
      if (opts.want('hostile:corpus-upload')) {
        const t0 = Date.now();
        opts.log('hostile:corpus-upload: the bundle corpus through ota-release upload');
        rows.push(await corpusUpload(ctx, corpus, await streamingCases(join(dir, 'streaming-up'), key), t0, opts.mode));
      }
      if (opts.want('hostile:corpus-install')) {
        const t0 = Date.now();
        opts.log('hostile:corpus-install: the bundle corpus through ota-agent install');
        rows.push(await corpusInstall(dir, corpus, await streamingCases(join(dir, 'streaming-in'), key), key, t0, opts.mode));
      }
      if (!(await alive(ctx))) {
        for (const r of rows) r.failures.push('the server was no longer answering at the end of the hostile part');
      }
    } finally {
      await server.proc.stop();
    }
  } finally {
    await cleanup();
  }
  return rows;
}

/** The server, its tokens and two enrolled devices with some history. */
interface Ctx {
  server: Server;
  url: string;
  token: Record<Exclude<Cred, 'none' | 'bogus'>, string>;
  release: { version: string; sha256: string };
  routes: Route[];
  /** A valid signed bundle larger than the server's upload cap. */
  oversize: string;
}

async function setUp(dir: string, server: Server, key: ReleaseKey): Promise<Ctx> {
  const url = server.proc.url;
  const rel = await fsRelease(join(dir, 'rel'), key, { version: '0.9.0', healthy: true });
  const up = await execa('node', [RELEASE_CLI, 'upload', rel.path, '--server', url, '--channel', 'stable'], { env: { OTA_TOKEN: server.tokens.ops }, reject: false });
  if (up.exitCode !== 0) throw new Error(`hostile set-up: the baseline upload failed: ${String(up.stderr)}`);
  const d1 = await enrollDevice(server, 'd-1');
  const d2 = await enrollDevice(server, 'd-2');
  // Some history, so that a request that slipped through would show as a change.
  await api(url, d1, 'POST', '/v1/devices/d-1/checkin', { nonce: 'ab'.repeat(32), slot: 'A', version: null, state: 'idle' });
  await api(url, d1, 'POST', '/v1/devices/d-1/reports', { id: 'seed-1', transaction: 'tx-seed', version: '0.9.0', state: 'downloading', progress: { bytes: 1, total: 2 }, at: new Date().toISOString() });
  const token = { ...server.tokens, device: d1, 'other-device': d2 };
  const release = { version: rel.version, sha256: rel.sha256 };
  // A genuine bundle twice the upload cap: refused for its size, not for its contents.
  const oversize = (await rawRelease(join(dir, 'big'), key, { version: '5.0.0', healthy: true, bulk: 2 * MAX_BUNDLE })).path;
  let seq = 0;
  const routes: Route[] = [
    { name: 'upload', method: 'POST', path: '/v1/releases', roles: ['ops'] },
    { name: 'list releases', method: 'GET', path: '/v1/releases', roles: ['ops', 'technician'] },
    {
      name: 'publish',
      method: 'PUT',
      path: '/v1/channels/beta',
      roles: ['ops'],
      body: () => ({ product: 'gateway', version: '0.9.0' }),
      fields: { product: 'string', version: 'string' },
      param: { name: 'channel', build: (v) => `/v1/channels/${encodeURIComponent(v)}` },
    },
    {
      name: 'enroll',
      method: 'POST',
      path: '/v1/devices/enroll',
      roles: ['enroll', 'ops'],
      body: () => ({ id: `h-${++seq}`, compatible: COMPATIBLE, channel: 'stable', replace: false }),
      fields: { id: 'string', compatible: 'string', channel: 'string', replace: 'boolean' },
    },
    {
      name: 'checkin',
      method: 'POST',
      path: '/v1/devices/d-1/checkin',
      roles: ['device'],
      body: () => ({ nonce: 'cd'.repeat(32), slot: 'A', version: '0.9.0', state: 'downloading', transaction: { id: 'tx-h', version: '0.9.0', state: 'downloading' } }),
      fields: { nonce: 'string', slot: 'string', version: 'string|null', state: 'string', transaction: 'object', 'transaction.id': 'string', 'transaction.version': 'string', 'transaction.state': 'string' },
      param: { name: 'id', build: (v) => `/v1/devices/${encodeURIComponent(v)}/checkin` },
    },
    {
      name: 'reports',
      method: 'POST',
      path: '/v1/devices/d-1/reports',
      roles: ['device'],
      body: () => ({ id: `h-${++seq}`, transaction: 'tx-h', version: '0.9.0', state: 'rolled-back', outcome: 'failure', reason: 'health-check:app', progress: { bytes: 1, total: 2 }, details: { note: 'hostile' }, at: new Date().toISOString() }),
      fields: { id: 'string', transaction: 'string', version: 'string', state: 'string', outcome: 'string', reason: 'string', progress: 'object', 'progress.bytes': 'integer', 'progress.total': 'integer', details: 'object', at: 'string' },
      param: { name: 'id', build: (v) => `/v1/devices/${encodeURIComponent(v)}/reports` },
    },
    { name: 'fleet', method: 'GET', path: '/v1/devices', roles: ['ops', 'technician'] },
    { name: 'device', method: 'GET', path: '/v1/devices/d-1', roles: ['ops', 'technician'], param: { name: 'id', build: (v) => `/v1/devices/${encodeURIComponent(v)}` } },
    {
      name: 'rollback',
      method: 'POST',
      path: '/v1/devices/d-1/rollback',
      roles: ['ops', 'technician'],
      body: () => ({ note: 'hostile' }),
      fields: { note: 'string' },
      param: { name: 'id', build: (v) => `/v1/devices/${encodeURIComponent(v)}/rollback` },
    },
    { name: 'bundle', method: 'GET', path: `/v1/bundles/${rel.sha256}`, roles: ['device', 'ops'], param: { name: 'sha256', build: (v) => `/v1/bundles/${encodeURIComponent(v)}` } },
  ];
  return { server, url, token, release, routes, oversize };
}

/** One request and what it had to get. */
interface Check {
  label: string;
  req: RawRequest;
  /** Acceptable statuses (a refusal is any 4xx unless narrowed). */
  expect: (a: RawAnswer) => boolean;
  answer?: RawAnswer;
  /** What the server state showed changed after this request, if anything. */
  stored?: string[];
}

const is4xx = (a: RawAnswer): boolean => a.status >= 400 && a.status < 500;

function auth(ctx: Ctx, cred: Cred): Record<string, string> {
  if (cred === 'none') return {};
  if (cred === 'bogus') return { authorization: 'Bearer otaab_0000000000000000000000000000000000000000000' };
  return { authorization: `Bearer ${ctx.token[cred]}` };
}

const json = (ctx: Ctx, cred: Cred, extra: Record<string, string> = {}): Record<string, string> => ({ ...auth(ctx, cred), 'content-type': 'application/json', ...extra });

/** Sends each check and compares the server's state after it with the state before it. */
async function send(ctx: Ctx, checks: Check[]): Promise<Check[]> {
  let before = await serverState(ctx);
  for (const c of checks) {
    c.answer = await rawRequest(ctx.url, c.req);
    const after = await serverState(ctx);
    const changed = diff(before, after);
    if (changed.length) c.stored = changed;
    before = after;
  }
  return checks;
}

async function roles(ctx: Ctx): Promise<Check[]> {
  const all: Cred[] = ['none', 'bogus', 'ops', 'technician', 'enroll', 'device', 'other-device'];
  const checks: Check[] = [];
  for (const r of ctx.routes) {
    for (const cred of all) {
      const deviceBound = r.name === 'checkin' || r.name === 'reports';
      if (cred === 'other-device' && !deviceBound && r.name !== 'bundle') continue;
      const allowed = r.roles.includes(cred) || (cred === 'other-device' && r.name === 'bundle');
      let body: string | Buffer | undefined;
      let headers: Record<string, string> = auth(ctx, cred);
      if (r.body) {
        // Allowed roles get past the gate and must then be stopped by the schema.
        body = JSON.stringify({ ...r.body(), surprise: 1 });
        headers = json(ctx, cred);
      } else if (r.name === 'upload') {
        body = Buffer.alloc(4096, 0x41);
        headers = { ...headers, 'content-type': 'application/octet-stream' };
      }
      const want = cred === 'none' || cred === 'bogus' ? [401] : !allowed ? [403] : r.body || r.name === 'upload' ? [400] : [200];
      checks.push({ label: `${r.method} ${r.path} as ${cred} → ${want.join('/')}`, req: { method: r.method, path: r.path, headers, ...(body !== undefined ? { body } : {}) }, expect: (a) => want.includes(a.status) });
    }
  }
  checks.push({ label: 'GET /v1/openapi.json without a token → 200', req: { method: 'GET', path: '/v1/openapi.json' }, expect: (a) => a.status === 200 });
  return send(ctx, checks);
}

function firstRole(r: Route): Cred {
  return r.roles[0]!;
}

async function ids(ctx: Ctx): Promise<Check[]> {
  const checks: Check[] = [];
  for (const r of ctx.routes) {
    if (!r.param) continue;
    const cred = firstRole(r);
    for (const v of HOSTILE_IDS) {
      const body = r.name === 'publish' ? { product: 'gateway', version: '99.0.0' } : r.body?.();
      checks.push({
        label: `${r.method} ${r.param.build(v)}`,
        req: { method: r.method, path: r.param.build(v), headers: body ? json(ctx, cred) : auth(ctx, cred), ...(body ? { body: JSON.stringify(body) } : {}) },
        expect: is4xx,
      });
      // The same, sent raw (not encoded), where it still makes a request line (printable ASCII).
      if (/^[\x21-\x7e]+$/.test(v)) {
        const raw = r.param.build('__X__').replace('__X__', v);
        checks.push({ label: `${r.method} ${raw} (raw)`, req: { method: r.method, path: raw, headers: body ? json(ctx, cred) : auth(ctx, cred), ...(body ? { body: JSON.stringify(body) } : {}) }, expect: is4xx });
      }
    }
  }
  // Ids inside bodies that name things: the enrolled id, its type and channel; the published version.
  const enroll = ctx.routes.find((r) => r.name === 'enroll')!;
  for (const v of HOSTILE_IDS) {
    for (const field of ['id', 'compatible', 'channel']) {
      checks.push({ label: `enroll with ${field}=${JSON.stringify(v)}`, req: { method: 'POST', path: enroll.path, headers: json(ctx, 'enroll'), body: JSON.stringify({ ...enroll.body!(), [field]: v }) }, expect: is4xx });
    }
    checks.push({ label: `publish version ${JSON.stringify(v)}`, req: { method: 'PUT', path: '/v1/channels/beta', headers: json(ctx, 'ops'), body: JSON.stringify({ product: 'gateway', version: v }) }, expect: is4xx });
  }
  return send(ctx, checks);
}

async function types(ctx: Ctx): Promise<Check[]> {
  const checks: Check[] = [];
  for (const r of ctx.routes) {
    if (!r.body || !r.fields) continue;
    const cred = firstRole(r);
    for (const [field, type] of Object.entries(r.fields)) {
      for (const v of WRONG[type]) {
        const body = setPath(r.body(), field, v);
        checks.push({ label: `${r.method} ${r.path} with ${field}=${JSON.stringify(v)}`, req: { method: r.method, path: r.path, headers: json(ctx, cred), body: JSON.stringify(body) }, expect: (a) => a.status === 400 });
      }
    }
    for (const whole of ['[]', '"text"', '123', 'null', 'true', JSON.stringify([r.body()])]) {
      checks.push({ label: `${r.method} ${r.path} with body ${whole.slice(0, 40)}`, req: { method: r.method, path: r.path, headers: json(ctx, cred), body: whole }, expect: (a) => a.status === 400 });
    }
  }
  return send(ctx, checks);
}

async function unknownFields(ctx: Ctx): Promise<Check[]> {
  const checks: Check[] = [];
  for (const r of ctx.routes) {
    if (!r.body || !r.fields) continue;
    const cred = firstRole(r);
    const base = JSON.stringify(r.body());
    const inject = (extra: string): string => `${base.slice(0, -1)},${extra}}`;
    const variants = ['"surprise":true', '"__proto__":{"admin":true}', '"constructor":{"prototype":{"admin":true}}', '"role":"ops"', '"device":"d-2"', '"":1'];
    for (const v of variants) {
      checks.push({ label: `${r.method} ${r.path} with ${v}`, req: { method: r.method, path: r.path, headers: json(ctx, cred), body: inject(v) }, expect: (a) => a.status === 400 });
    }
    for (const [field, type] of Object.entries(r.fields)) {
      // Free-form by contract: a report's details may hold anything.
      if (type !== 'object' || field === 'details') continue;
      const body = setPath(r.body(), `${field}.surprise`, true);
      checks.push({ label: `${r.method} ${r.path} with ${field}.surprise`, req: { method: r.method, path: r.path, headers: json(ctx, cred), body: JSON.stringify(body) }, expect: (a) => a.status === 400 });
    }
  }
  return send(ctx, checks);
}

function* chunksOf(total: number, size = 64 * 1024, fill = 0x20): Iterable<Buffer> {
  const block = Buffer.alloc(size, fill);
  for (let sent = 0; sent < total; sent += size) yield block.subarray(0, Math.min(size, total - sent));
}

/** A JSON object `{...base, "padding": "   ...   "}` of about `size` bytes, streamed. */
function* paddedJson(base: Record<string, unknown>, size: number): Iterable<Buffer> {
  const head = JSON.stringify(base);
  yield Buffer.from(`${head.slice(0, -1)},"padding":"`);
  yield* chunksOf(size);
  yield Buffer.from('"}');
}

async function huge(ctx: Ctx): Promise<Check[]> {
  const checks: Check[] = [];
  for (const r of ctx.routes) {
    if (!r.body) continue;
    const cred = firstRole(r);
    for (const size of [1 << 20, 32 << 20]) {
      const whole = Buffer.concat([...paddedJson(r.body(), size)]);
      checks.push({ label: `${r.method} ${r.path} with a ${size >> 20} MiB JSON body (Content-Length)`, req: { method: r.method, path: r.path, headers: json(ctx, cred), body: whole }, expect: (a) => a.status === 413 });
      checks.push({ label: `${r.method} ${r.path} with a ${size >> 20} MiB JSON body (chunked)`, req: { method: r.method, path: r.path, headers: json(ctx, cred), body: () => paddedJson(r.body!(), size) }, expect: (a) => a.status === 413 });
    }
  }
  const octet = { ...auth(ctx, 'ops'), 'content-type': 'application/octet-stream' };
  const big = await readFile(ctx.oversize);
  const bigChunks = function* (): Iterable<Buffer> {
    for (let at = 0; at < big.length; at += 64 * 1024) yield big.subarray(at, at + 64 * 1024);
  };
  checks.push({ label: `upload of a valid ${big.length >> 20} MiB bundle over an 8 MiB cap (Content-Length)`, req: { method: 'POST', path: '/v1/releases', headers: octet, body: big }, expect: (a) => a.status === 413 });
  checks.push({ label: `upload of a valid ${big.length >> 20} MiB bundle over an 8 MiB cap (chunked)`, req: { method: 'POST', path: '/v1/releases', headers: octet, body: bigChunks }, expect: (a) => a.status === 413 });
  // Deep nesting inside the one free-form object (a report's details), and in place of a field.
  const depth = 40_000;
  const deep = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const report = JSON.stringify({ id: 'deep-1', transaction: 'tx-deep', version: '0.9.0', state: 'downloading', at: new Date().toISOString() });
  checks.push({ label: `POST /v1/devices/d-1/reports with details nested ${depth} deep (${Math.round(deep.length / 1024)} KiB)`, req: { method: 'POST', path: '/v1/devices/d-1/reports', headers: json(ctx, 'device'), body: `${report.slice(0, -1)},"details":${deep}}` }, expect: is4xx });
  const arr = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
  checks.push({ label: 'POST /v1/devices/d-1/checkin with an array nested 100000 deep', req: { method: 'POST', path: '/v1/devices/d-1/checkin', headers: json(ctx, 'device'), body: arr }, expect: is4xx });
  checks.push({ label: 'GET /v1/devices with a 64 KiB header', req: { method: 'GET', path: '/v1/devices', headers: { ...auth(ctx, 'ops'), 'x-padding': 'x'.repeat(64 * 1024) } }, expect: is4xx });
  checks.push({ label: 'GET /v1/devices/<64 KiB id>', req: { method: 'GET', path: `/v1/devices/${'d'.repeat(64 * 1024)}`, headers: auth(ctx, 'ops') }, expect: is4xx });
  checks.push({ label: 'a 64 KiB bearer token', req: { method: 'GET', path: '/v1/devices', headers: { authorization: `Bearer ${'A'.repeat(64 * 1024)}` } }, expect: is4xx });
  checks.push({ label: 'a 12 KiB bearer token', req: { method: 'GET', path: '/v1/devices', headers: { authorization: `Bearer ${'A'.repeat(12 * 1024)}` } }, expect: (a) => a.status === 401 });
  return send(ctx, checks);
}

async function malformed(ctx: Ctx): Promise<Check[]> {
  const checks: Check[] = [];
  for (const r of ctx.routes) {
    if (!r.body) continue;
    const cred = firstRole(r);
    const good = JSON.stringify(r.body());
    const variants: [string, Record<string, string>, string | Buffer][] = [
      ['truncated JSON', json(ctx, cred), good.slice(0, -3)],
      ['an empty JSON body', json(ctx, cred), ''],
      ['JSON with a trailing comma', json(ctx, cred), `${good.slice(0, -1)},}`],
      ['JSON followed by garbage', json(ctx, cred), `${good}{}`],
      ['single-quoted JSON', json(ctx, cred), good.replace(/"/g, "'")],
      ['a UTF-16 body', json(ctx, cred), Buffer.from(good, 'utf16le')],
      ['invalid UTF-8', json(ctx, cred), Buffer.concat([Buffer.from(good.slice(0, -2)), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')])],
      ['text/plain', { ...auth(ctx, cred), 'content-type': 'text/plain' }, good],
      ['application/x-www-form-urlencoded', { ...auth(ctx, cred), 'content-type': 'application/x-www-form-urlencoded' }, 'version=0.9.0'],
      ['application/octet-stream', { ...auth(ctx, cred), 'content-type': 'application/octet-stream' }, good],
      ['no content type', auth(ctx, cred), good],
    ];
    for (const [what, headers, body] of variants) {
      checks.push({ label: `${r.method} ${r.path}: ${what}`, req: { method: r.method, path: r.path, headers, body }, expect: is4xx });
    }
  }
  const bundle = `/v1/bundles/${ctx.release.sha256}`;
  const dev = auth(ctx, 'device');
  checks.push({ label: 'upload as JSON', req: { method: 'POST', path: '/v1/releases', headers: json(ctx, 'ops'), body: '{"version":"1.0.0"}' }, expect: (a) => a.status === 415 });
  checks.push({ label: 'upload of an empty body', req: { method: 'POST', path: '/v1/releases', headers: { ...auth(ctx, 'ops'), 'content-type': 'application/octet-stream' }, body: '' }, expect: is4xx });
  checks.push({ label: 'upload of a text file', req: { method: 'POST', path: '/v1/releases', headers: { ...auth(ctx, 'ops'), 'content-type': 'application/octet-stream' }, body: 'manifest.json\n' }, expect: is4xx });
  checks.push({ label: 'bundle with a Range past the end', req: { method: 'GET', path: bundle, headers: { ...dev, range: 'bytes=999999999-' } }, expect: (a) => a.status === 416 });
  checks.push({ label: 'bundle with sha256 in upper case', req: { method: 'GET', path: `/v1/bundles/${ctx.release.sha256.toUpperCase()}`, headers: dev }, expect: is4xx });
  checks.push({ label: 'bundle that no release has', req: { method: 'GET', path: `/v1/bundles/${'0'.repeat(64)}`, headers: dev }, expect: (a) => a.status === 404 });
  checks.push({ label: 'bundle of the server database by name', req: { method: 'GET', path: '/v1/bundles/server.db', headers: dev }, expect: is4xx });
  checks.push({ label: 'DELETE /v1/releases', req: { method: 'DELETE', path: '/v1/releases', headers: auth(ctx, 'ops') }, expect: is4xx });
  checks.push({ label: 'PATCH /v1/devices/d-1', req: { method: 'PATCH', path: '/v1/devices/d-1', headers: json(ctx, 'ops'), body: '{}' }, expect: is4xx });
  checks.push({ label: 'GET /v2/devices', req: { method: 'GET', path: '/v2/devices', headers: auth(ctx, 'ops') }, expect: is4xx });
  checks.push({ label: 'token in the query string', req: { method: 'GET', path: `/v1/devices?token=${ctx.token.ops}`, headers: {} }, expect: is4xx });
  await send(ctx, checks);
  // An upload the client abandons half way: no answer to check, only that nothing stays behind.
  await abandonedUpload(ctx);
  const tmpLeft = await readdir(join(ctx.server.data, 'tmp')).catch(() => []);
  checks.push({ label: 'upload abandoned by the client after 2 MiB leaves nothing in tmp/', req: { method: 'GET', path: '/v1/releases' }, answer: { status: tmpLeft.length === 0 ? 200 : 500, body: `left in tmp/: ${tmpLeft.join(' ')}`, code: undefined, socketError: undefined }, expect: (a) => a.status === 200 });
  return checks;
}

async function abandonedUpload(ctx: Ctx): Promise<void> {
  const { request } = await import('node:http');
  const u = new URL(ctx.url);
  const bundle = await readFile(join(ctx.server.data, 'bundles', ctx.release.sha256));
  await new Promise<void>((resolve) => {
    const r = request({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/releases', headers: { ...auth(ctx, 'ops'), 'content-type': 'application/octet-stream', 'content-length': String(bundle.length + (4 << 20)) } });
    r.on('error', () => resolve());
    r.write(bundle);
    r.write(Buffer.alloc(2 << 20));
    setTimeout(() => {
      r.destroy();
      resolve();
    }, 300);
  });
  // The server notices the closed connection and cleans up asynchronously.
  for (let i = 0; i < 50; i++) {
    if ((await readdir(join(ctx.server.data, 'tmp')).catch(() => [])).length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Everything the server holds, as seen through its files, its database and its API. */
async function serverState(ctx: Ctx): Promise<Record<string, unknown>> {
  const db = new Database(join(ctx.server.data, 'server.db'), { readonly: true, fileMustExist: true });
  const counts: Record<string, number> = {};
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    // bundle_served counts bytes the server sent (a tolerated request answered 200 adds to it,
    // flushed up to a second later, so during a later family): what was served, not what a
    // request stored.
    for (const { name } of tables) {
      if (name !== 'bundle_served') counts[name] = (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n;
    }
  } finally {
    db.close();
  }
  const ops = ctx.token.ops;
  return {
    bundles: (await readdir(join(ctx.server.data, 'bundles'))).sort(),
    tmp: (await readdir(join(ctx.server.data, 'tmp')).catch(() => [])).sort(),
    rows: counts,
    releases: await api(ctx.url, ops, 'GET', '/v1/releases'),
    fleet: await api(ctx.url, ops, 'GET', '/v1/devices'),
    d1: await api(ctx.url, ops, 'GET', '/v1/devices/d-1'),
    d2: await api(ctx.url, ops, 'GET', '/v1/devices/d-2'),
  };
}

async function alive(ctx: Ctx): Promise<boolean> {
  return (await rawRequest(ctx.url, { method: 'GET', path: '/v1/openapi.json' })).status === 200;
}

/** Names the keys whose values differ between two states. */
function diff(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return Object.keys(a).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => `${k}: ${JSON.stringify(a[k]).slice(0, 200)} → ${JSON.stringify(b[k]).slice(0, 200)}`);
}

function statusSummary(answers: RawAnswer[]): string {
  const by = new Map<string, number>();
  for (const a of answers) {
    const k = a.status === 0 ? `reset(${a.socketError ?? '?'})` : String(a.status);
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  return [...by.entries()].sort().map(([k, n]) => `${k}×${n}`).join(', ');
}

function httpRow(id: string, what: string, checks: Check[], t0: number, mode: Row['mode']): Row {
  const failures: string[] = [];
  let held = 0;
  for (const c of checks) {
    const a = c.answer!;
    const ok = c.expect(a) && a.status < 500;
    if (ok && !c.stored) held++;
    if (!ok) failures.push(`${c.label}: got ${a.status || `no answer (${a.socketError ?? 'closed'})`} ${a.code ?? a.body.slice(0, 120)}`.trim());
    for (const st of c.stored ?? []) failures.push(`${c.label}: stored ${st}`);
  }
  const stored = checks.filter((c) => c.stored).length;
  const fives = checks.filter((c) => (c.answer?.status ?? 0) >= 500).length;
  return makeRow({
    id,
    part: 'hostile',
    what,
    tried: checks.length,
    held,
    figures: `answers ${statusSummary(checks.map((c) => c.answer!))}; ${fives} × 5xx; ${stored ? `${stored} request(s) STORED something` : 'nothing stored (bundles/, tmp/, DB rows and API compared after every request)'}`,
    failures,
    seconds: since(t0),
    mode,
  });
}

/**
 * The code of a CLI's error line `<prog> <cmd>: CODE: text`: the last line of stderr (the agent
 * narrates its transaction on stderr before it; ota-release prints the error line alone).
 */
export function cliErrorCode(stderr: string, prefix: string, alone = false): string | undefined {
  const lines = stderr.trim().split('\n').filter(Boolean);
  if (alone && lines.length !== 1) return undefined;
  const m = new RegExp(`^${prefix}: ([A-Z][A-Z0-9_]+): \\S`).exec(lines.at(-1) ?? '');
  return m?.[1];
}

/** A hostile bundle of the suite's own, with the code it must be refused with. */
interface OwnCase {
  name: string;
  file: string;
  expect: string;
}

/**
 * Single-image bundles broken after their signed manifest. The corpus's payload-level cases
 * carry two images, which a raw slot refuses from the manifest alone (PAYLOAD_SLOT_MISMATCH);
 * these get to the agent's streaming verifier, so bytes do reach slot B before the refusal.
 */
async function streamingCases(dir: string, key: ReleaseKey): Promise<OwnCase[]> {
  const rel = await rawRelease(dir, key, { version: '1.0.1', healthy: true, bulk: 256 * 1024 });
  const good = await readFile(rel.path);
  const body = good.subarray(0, good.length - END_OF_ARCHIVE.length);
  const flipped = Buffer.from(good);
  const mid = good.length - END_OF_ARCHIVE.length - 100 * 1024;
  flipped[mid] = (flipped[mid] ?? 0) ^ 0xff;
  const cases: [string, string, Buffer][] = [
    ['stream-flipped-byte', 'PAYLOAD_HASH_MISMATCH', flipped],
    ['stream-truncated', 'BUNDLE_TRUNCATED', good.subarray(0, good.length - END_OF_ARCHIVE.length - 128 * 1024)],
    ['stream-trailing-data', 'BUNDLE_TRAILING_DATA', Buffer.concat([good, Buffer.alloc(4096, 0x41)])],
    ['stream-undeclared-entry', 'ENTRY_UNDECLARED', Buffer.concat([body, header('payloads/backdoor', 5, '0', 1_790_000_000), pad(Buffer.from('evil\n')), END_OF_ARCHIVE])],
  ];
  const out: OwnCase[] = [];
  for (const [name, expect, bytes] of cases) {
    const file = join(dir, `${name}.otab`);
    await writeFile(file, bytes);
    out.push({ name, file, expect });
  }
  return out;
}

async function corpusUpload(ctx: Ctx, corpus: Corpus, own: OwnCase[], t0: number, mode: Row['mode']): Promise<Row> {
  const failures: string[] = [];
  const notes: string[] = [];
  let held = 0;
  let exact = 0;
  let stored = 0;
  const cases = [...corpus.cases, ...own];
  let before = await serverState(ctx);
  for (const c of cases) {
    const r = await execa('node', [RELEASE_CLI, 'upload', c.file, '--server', ctx.url], { env: { OTA_TOKEN: ctx.token.ops }, reject: false });
    const code = cliErrorCode(String(r.stderr), 'ota-release upload', true);
    const after = await serverState(ctx);
    const changed = diff(before, after);
    before = after;
    for (const ch of changed) failures.push(`${c.name}: stored ${ch}`);
    if (changed.length) stored++;
    if (r.exitCode === 1 && code) {
      if (!changed.length) held++;
      if (code === c.expect) exact++;
      else notes.push(`${c.name}: refused with ${code}, expected ${c.expect}`);
    } else {
      failures.push(`${c.name}: exit ${r.exitCode}, stderr ${JSON.stringify(String(r.stderr).slice(0, 200))}`);
    }
  }
  return makeRow({
    id: 'hostile:corpus-upload',
    part: 'hostile',
    what: `the ${corpus.cases.length} hostile bundles of scripts/corpus and ${own.length} broken while streaming, through ota-release upload`,
    tried: cases.length,
    held,
    figures: `exit 1 with a one-line error: ${held}; naming the expected code: ${exact}; ${stored ? `${stored} STORED something` : 'nothing stored (compared after every upload)'}`,
    failures,
    notes,
    seconds: since(t0),
    mode,
  });
}

/** What an install may have touched. */
interface DeviceSnapshot {
  A: string;
  B: string;
  grubenv: string;
}

async function snapshot(d: FleetDevice): Promise<DeviceSnapshot> {
  return {
    A: await slotFingerprint(d.dev.slots.A),
    B: await slotFingerprint(d.dev.slots.B),
    grubenv: (await readFile(d.dev.grubenvPath)).toString('base64'),
  };
}

/** Cases whose payload is a tree (module or archive): they need an fs slot to get past the manifest. */
function treeCase(c: CorpusCase | OwnCase): boolean {
  return c.name.startsWith('tree-') || c.name === 'tar-bomb';
}

/**
 * The corpus and the bundles broken while streaming through `ota-agent install`. The devices
 * trust the corpus's keys and `key`, which signs the streaming cases: without it those are
 * refused at the signature and never reach the streaming verifier they are made for.
 */
async function corpusInstall(dir: string, corpus: Corpus, own: OwnCase[], key: ReleaseKey, t0: number, mode: Row['mode']): Promise<Row> {
  const trustedKeys = [...corpus.keyring, key.pubPath];
  const devices: Record<'raw' | 'fs', FleetDevice> = {
    raw: await FleetDevice.create({ root: join(dir, 'dev-raw'), id: 'hostile-raw', compatible: COMPATIBLE, kind: 'raw', slotSize: 4 << 20, trustedKeys }),
    fs: await FleetDevice.create({ root: join(dir, 'dev-fs'), id: 'hostile-fs', compatible: COMPATIBLE, kind: 'fs', trustedKeys }),
  };
  // Something recognisable in the inactive slot B, so that any byte written to it shows.
  await fillPattern(devices.raw.dev.slots.B, 7);
  await mkdir(join(devices.fs.dev.slots.B, 'etc'), { recursive: true });
  await writeFile(join(devices.fs.dev.slots.B, 'etc', 'previous'), 'what slot B held before\n');
  const pristine: Record<string, string> = {};
  for (const [kind, d] of Object.entries(devices)) {
    await bootUntilUp(d.dev);
    pristine[kind] = join(dir, `grubenv-${kind}`);
    await copyFile(d.dev.grubenvPath, pristine[kind]);
  }
  const failures: string[] = [];
  const notes: string[] = [];
  let held = 0;
  let untouched = 0;
  let disarmed = 0;
  let exact = 0;
  const cases = [...corpus.cases, ...own];
  for (const c of cases) {
    const kind = treeCase(c) ? 'fs' : 'raw';
    const d = devices[kind];
    const before = await snapshot(d);
    const r = await d.agent(['install', c.file]);
    const after = await snapshot(d);
    const code = cliErrorCode(r.stderr, 'ota-agent install');
    const problems: string[] = [];
    if (r.code !== 1 || !code) problems.push(`exit ${r.code}, stderr ${JSON.stringify(r.stderr.slice(0, 200))}`);
    if (after.A !== before.A) problems.push('the running slot A changed');
    if ((await d.reboots()) > 0) problems.push('a reboot was requested');
    const env = await readEnv(d.dev.grubenvPath);
    const bTouched = after.B !== before.B || after.grubenv !== before.grubenv;
    if (bTouched && !(env.B_OK === '0' && (env.ORDER ?? '').startsWith('A'))) problems.push(`slot B was written and left bootable (B_OK=${env.B_OK} ORDER="${env.ORDER}")`);
    if (problems.length) {
      failures.push(`${c.name} (${kind} slot): ${problems.join('; ')}`);
    } else {
      held++;
      if (bTouched) disarmed++;
      else untouched++;
      if (code === c.expect) exact++;
    }
    if (code && code !== c.expect && !problems.length) notes.push(`${c.name} (${kind} slot): refused with ${code}, expected ${c.expect}`);
    // Back to the same starting point for the next case: slot B and grubenv as they were.
    if (bTouched) {
      await copyFile(pristine[kind]!, d.dev.grubenvPath);
      if (kind === 'raw') await fillPattern(d.dev.slots.B, 7);
    }
  }
  return makeRow({
    id: 'hostile:corpus-install',
    part: 'hostile',
    what: `the ${corpus.cases.length} corpus bundles and ${own.length} broken while streaming, through ota-agent install (tree cases on an fs device, the rest on a raw one)`,
    tried: cases.length,
    held,
    figures: `exit 1 with an error line: ${held}; slots and grubenv untouched: ${untouched}; refused while streaming, slot B disarmed (B_OK=0): ${disarmed}; running slot changed: never; naming the expected code: ${exact}`,
    failures,
    notes,
    seconds: since(t0),
    mode,
  });
}
