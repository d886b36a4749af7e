/**
 * The JSON body parser's own checks, found by the reliability suite's hostile input: invalid
 * UTF-8 and absurd nesting are refused with 400 and nothing is stored; byte counts past 2^53
 * are refused by the schema instead of failing in SQLite with a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkedJsonText, jsonDepth, MAX_JSON_DEPTH } from '../../server/plugins/json-body.js';
import { bearer, enroll, releaseKey, testServer, type TestServer } from './helpers.js';

let s: TestServer;
let device: string;

beforeAll(async () => {
  s = await testServer([await releaseKey()]);
  device = await enroll(s, 'dev-json');
});
afterAll(async () => {
  await s?.close();
});

const report = (over: Record<string, unknown> = {}) => ({ id: `r-${Math.random()}`, transaction: 'tx-1', version: '1.0.0', state: 'downloading', at: new Date().toISOString(), ...over });

async function post(url: string, token: string, body: Buffer | string) {
  return s.app.inject({ method: 'POST', url, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: body });
}

async function storedReports(): Promise<number> {
  const res = await s.app.inject({ method: 'GET', url: '/v1/devices/dev-json', headers: bearer(s.tokens.ops) });
  return (res.json() as { reports: unknown[] }).reports.length;
}

describe('jsonDepth', () => {
  it('counts nesting and ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonDepth('{"a":[1,{"b":[]}]}', 100)).toBe(4);
    expect(jsonDepth('{"a":"[[[{{{\\"[[["}', 100)).toBe(1);
    expect(jsonDepth('1', 100)).toBe(0);
    expect(jsonDepth('['.repeat(10_000), 5)).toBe(6);
  });
});

describe('checkedJsonText', () => {
  it('passes valid UTF-8 through, multi-byte characters included', () => {
    expect(checkedJsonText(Buffer.from('{"note":"Zählerstand ✓"}'))).toBe('{"note":"Zählerstand ✓"}');
  });
  it('names invalid UTF-8 and deep nesting', () => {
    expect(() => checkedJsonText(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]))).toThrow(/not valid UTF-8/);
    expect(() => checkedJsonText(Buffer.from(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`))).toThrow(/more than 32 levels/);
  });
});

describe('JSON bodies over HTTP', () => {
  it('refuses a rollback note with invalid UTF-8 (400 REQUEST_MALFORMED) and stores no request', async () => {
    const body = Buffer.concat([Buffer.from('{"note":"hostile'), Buffer.from([0xff, 0x28]), Buffer.from('"}')]);
    const res = await post('/v1/devices/dev-json/rollback', s.tokens.technician, body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'REQUEST_MALFORMED', message: expect.stringMatching(/UTF-8/) });
    const again = await post('/v1/devices/dev-json/rollback', s.tokens.technician, '{"note":"genuine"}');
    expect(again.statusCode).toBe(202);
  });

  it('refuses report details nested thousands deep (400, not 500) and stores nothing', async () => {
    const before = await storedReports();
    const deep = `{"x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const res = await post('/v1/devices/dev-json/reports', device, JSON.stringify(report()).replace(/}$/, `,"details":${deep}}`));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'REQUEST_MALFORMED' });
    expect(await storedReports()).toBe(before);
  });

  it('accepts details nested as deep as allowed', async () => {
    const ok = `${'{"x":'.repeat(MAX_JSON_DEPTH - 1)}1${'}'.repeat(MAX_JSON_DEPTH - 1)}`;
    const res = await post('/v1/devices/dev-json/reports', device, JSON.stringify(report()).replace(/}$/, `,"details":${ok}}`));
    expect(res.statusCode, res.body).toBe(200);
  });

  it('refuses progress byte counts beyond 2^53 (400 REQUEST_INVALID naming the field) and stores nothing', async () => {
    const before = await storedReports();
    for (const field of ['bytes', 'total']) {
      const progress = { bytes: 1, total: 2, [field]: 2 ** 64 };
      const res = await post('/v1/devices/dev-json/reports', device, JSON.stringify(report({ progress })));
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'REQUEST_INVALID', message: expect.stringContaining(`progress.${field}`) });
    }
    expect(await storedReports()).toBe(before);
  });
});
