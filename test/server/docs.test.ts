/** docs/SERVER.md stays in step with the code: the API table with its roles, config keys (error codes: test/docs/errors.test.ts). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIELDS } from '../../server/config.js';
import { ROOT } from '../helpers/cli.js';
import { releaseKey, testServer, type TestServer } from './helpers.js';

let doc: string;
let s: TestServer;

beforeAll(async () => {
  doc = await readFile(join(ROOT, 'docs', 'SERVER.md'), 'utf8');
  s = await testServer([await releaseKey()]);
});

afterAll(async () => {
  await s.close();
});

describe('docs/SERVER.md', () => {
  it('lists every route with the roles the server enforces', async () => {
    const openapi = (await s.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as { paths: Record<string, Record<string, { 'x-roles'?: string[] }>> };
    const served = Object.entries(openapi.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([m, op]) => [`${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`, (op['x-roles'] ?? []).slice().sort().join(',')]),
    );
    const documented = [...doc.matchAll(/^\| `((?:GET|POST|PUT|DELETE) \/v1\/[^`]*)` \| ([^|]+) \|/gm)].map((m) => {
      const roles = m[2]!.trim() === 'anyone' ? [] : m[2]!.split(',').map((r) => r.replace(/\(.*\)/, '').trim());
      return [m[1]!, roles.sort().join(',')];
    });
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(served));
  });

  it('lists every config key with its flag and environment variable', () => {
    for (const [key, f] of Object.entries(FIELDS)) {
      expect(doc).toMatch(new RegExp(`^\\| \`${key}\` \\| \`--${f.flag}\`.*\\| \`${f.env}\``, 'm'));
    }
  });
});
