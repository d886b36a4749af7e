/**
 * The console's fleet views at 100,000 devices, inserted straight into SQLite: pages follow
 * each other by cursor without gaps or repeats, filters hold, counts add up, and a page's query
 * plan reads the primary key from the cursor on, never the table before it nor a sort (speed is
 * the benchmark's business; here the plan is what stays true on any machine).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whereOf } from '../../../server/db/fleet-page.js';
import { bearer, releaseKey, testServer, type TestServer } from '../helpers.js';
import { ON_POSTGRES } from '../../../scripts/fleet/test-database.js';

const N = 100_000;
const STATES = ['idle', 'downloading', 'verifying', 'failed', null] as const;
let s: TestServer;

beforeAll(async () => {
  s = await testServer([await releaseKey()]);
  const db = s.app.store.db;
  // Many rows a statement: 110,000 one-row statements took one round trip each on PostgreSQL,
  // under the write lock for the whole seeding (a minute at load), stalling the other files.
  const ROWS = 500;
  const row = "(?, 'x86-gw', ?, 'stable', '2026-01-01T00:00:00.000Z', ?, 'A', ?, ?, ?, ?, ?, ?, ?)";
  const insert = db.prepare(
    `INSERT INTO devices (id, compatible, product, channel, enrolled, last_seen, slot, version, state, attributes, outcome, outcome_reason, outcome_version, outcome_at)
     VALUES ${Array.from({ length: ROWS }, () => row).join(', ')}`,
  );
  const tag = db.prepare(`INSERT INTO device_tags (device, tag) VALUES ${Array.from({ length: ROWS / 10 }, () => "(?, 'site:lyon')").join(', ')}`);
  db.transaction(() => {
    for (let first = 0; first < N; first += ROWS) {
      const values: unknown[] = [];
      const tagged: string[] = [];
      for (let i = first; i < first + ROWS; i++) {
        const id = `dev-${String(i).padStart(6, '0')}`;
        const failed = i % 100 === 7;
        values.push(
          id,
          i % 2 === 0 ? 'gateway' : 'charger',
          i % 5 === 4 ? null : '2026-12-04T00:00:00.000Z',
          i % 3 === 0 ? '1.1.0' : '1.0.0',
          STATES[i % 5],
          JSON.stringify({ 'slot.A': i % 3 === 0 ? '1.1.0' : '1.0.0' }),
          failed ? 'failure' : null,
          failed ? 'health-check:app' : null,
          failed ? '1.2.0' : null,
          failed ? '2026-12-04T00:00:00.000Z' : null,
        );
        if (i % 10 === 0) tagged.push(id);
      }
      insert.run(...values);
      tag.run(...tagged);
    }
  })();
  db.exec('ANALYZE');
}, 120_000);

afterAll(async () => {
  await s.close();
});

async function get(url: string): Promise<Record<string, unknown>> {
  const res = await s.app.inject({ method: 'GET', url, headers: bearer(s.tokens.technician) });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Record<string, unknown>;
}

type Page = { devices: { id: string; running: string | null; state: string | null; tags: string[]; lastOutcome: { reason: string } | null }[]; next: string | null };

describe('GET /v1/fleet/devices at 100,000 devices', () => {
  it('pages by cursor: consecutive, no gaps, the last page says so', async () => {
    const first = (await get('/v1/fleet/devices?limit=500')) as unknown as Page;
    expect(first.devices).toHaveLength(500);
    expect(first.devices[0]!.id).toBe('dev-000000');
    expect(first.next).toBe('dev-000499');
    const second = (await get(`/v1/fleet/devices?limit=500&cursor=${first.next}`)) as unknown as Page;
    expect(second.devices[0]!.id).toBe('dev-000500');
    const deep = (await get('/v1/fleet/devices?limit=100&cursor=dev-099949')) as unknown as Page;
    expect(deep.devices.map((d) => d.id)).toEqual(Array.from({ length: 50 }, (_, k) => `dev-${String(99950 + k).padStart(6, '0')}`));
    expect(deep.next).toBeNull();
    expect(first.devices[3]!.running).toBe('1.1.0');
  });

  it('filters by state, tag, outcome and id prefix, walking a filtered set to its end', async () => {
    let cursor: string | null = null;
    let seen = 0;
    do {
      const p = (await get(`/v1/fleet/devices?state=idle&tag=site:lyon&limit=1000${cursor ? `&cursor=${cursor}` : ''}`)) as unknown as Page;
      for (const d of p.devices) expect([d.state, d.tags]).toEqual(['idle', ['site:lyon']]);
      seen += p.devices.length;
      cursor = p.next;
    } while (cursor);
    // Every tenth device carries the tag, and all of them are idle (i % 5 === 0).
    expect(seen).toBe(10_000);
    const failures = (await get('/v1/fleet/devices?outcome=failure&limit=1000')) as unknown as Page;
    expect(failures.devices).toHaveLength(1000);
    expect(failures.devices.every((d) => d.lastOutcome?.reason === 'health-check:app')).toBe(true);
    const unknown = (await get('/v1/fleet/devices?state=unknown&limit=3')) as unknown as Page;
    expect(unknown.devices.map((d) => [d.id, d.state])).toEqual([['dev-000004', null], ['dev-000009', null], ['dev-000014', null]]);
    const prefix = (await get('/v1/fleet/devices?prefix=dev-01234&limit=100')) as unknown as Page;
    expect(prefix.devices.map((d) => d.id)).toEqual(Array.from({ length: 10 }, (_, k) => `dev-01234${k}`));
  });

  it('counts by state and version add up to the filtered total', async () => {
    const all = (await get('/v1/fleet/counts')) as { total: number; byState: { state: string; devices: number }[]; byVersion: { version: string; devices: number }[] };
    expect(all.total).toBe(N);
    expect(Object.fromEntries(all.byState.map((x) => [x.state, x.devices]))).toEqual({ idle: 20000, downloading: 20000, verifying: 20000, failed: 20000, unknown: 20000 });
    expect(Object.fromEntries(all.byVersion.map((x) => [x.version, x.devices]))).toEqual({ '1.0.0': 66666, '1.1.0': 33334 });
    const gw = (await get('/v1/fleet/counts?product=gateway&silent=86400')) as { total: number };
    // Even ids: i % 5 === 4 are never seen (10,000 of the 50,000); the others were seen on
    // 2026-12-04, which is silent only once that day is more than a day past.
    expect(gw.total).toBeGreaterThanOrEqual(10000);
  });

  // SQLite's query planner (EXPLAIN QUERY PLAN).
  it.skipIf(ON_POSTGRES)('reads pages from the primary key, from the cursor on', () => {
    const db = s.app.store.db;
    const plan = (sql: string, params: unknown[]): string =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('; ');
    const w = whereOf({});
    const page = plan(`SELECT d.id FROM devices d WHERE ${w.sql} AND d.id > ? ORDER BY d.id LIMIT 101`, ['dev-050000']);
    expect(page).toMatch(/SEARCH d USING (COVERING )?INDEX sqlite_autoindex_devices_1 \(id>\?\)/);
    expect(page).not.toMatch(/TEMP B-TREE/);
    const tagged = whereOf({ tag: 'site:lyon', state: 'idle' });
    expect(plan(`SELECT d.id FROM devices d WHERE ${tagged.sql} AND d.id > ? ORDER BY d.id LIMIT 101`, [...tagged.params, 'dev-050000'])).toMatch(
      /SEARCH d USING (COVERING )?INDEX sqlite_autoindex_devices_1 \(id>\?\)/,
    );
  });
});
