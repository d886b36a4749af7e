/** A data directory made by the schema before products (migration 1) upgrades in place. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../server/db/migrations.js';
import { openDatabase } from '../../server/db/open.js';
import { Store } from '../../server/db/store.js';
import { tempDir } from '../helpers/cli.js';

let dir: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  dir = await tempDir('otaab-migrate-');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('migration 2 (products, rollouts)', () => {
  it('keeps every release with the product of its manifest, channels and devices with theirs, and publishes become one-phase rollouts', () => {
    const file = join(dir.dir, 'server.db');
    const old = openDatabase(file, MIGRATIONS.slice(0, 1));
    const rel = old.prepare(
      'INSERT INTO releases (version, sha256, size, product, compatible, manifest, signature, signer, created, uploaded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    rel.run('1.0.0', 'a'.repeat(64), 10, 'gateway', '["x86-gw"]', Buffer.from('{}'), Buffer.from('sig'), 'FP', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
    rel.run('2.0.0', 'b'.repeat(64), 20, 'charger', '["evc"]', Buffer.from('{}'), Buffer.from('sig'), 'FP', '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z');
    old.prepare('INSERT INTO channels (name, version, updated) VALUES (?, ?, ?)').run('stable', '1.0.0', '2026-01-03T00:00:00Z');
    old.prepare('INSERT INTO channels (name, version, updated) VALUES (?, ?, ?)').run('beta', '2.0.0', '2026-01-03T00:00:00Z');
    old.prepare('INSERT INTO devices (id, compatible, channel, enrolled, version) VALUES (?, ?, ?, ?, ?)').run('gw-1', 'x86-gw', 'stable', '2026-01-01T00:00:00Z', '0.9.0');
    old.prepare('INSERT INTO devices (id, compatible, channel, enrolled) VALUES (?, ?, ?, ?)').run('odd-1', 'x86-gw', 'nightly', '2026-01-01T00:00:00Z');
    old.prepare('INSERT INTO rollbacks (id, device, requested_by, requested) VALUES (?, ?, ?, ?)').run('rb_1', 'gw-1', 'tech', '2026-01-04T00:00:00Z');
    old.close();

    const store = new Store(openDatabase(file));
    try {
      expect(store.releases.list().map((r) => [r.product, r.version, r.channels])).toEqual([
        ['gateway', '1.0.0', ['stable']],
        ['charger', '2.0.0', ['beta']],
      ]);
      expect(store.releases.channels().map((c) => [c.product, c.name, c.version])).toEqual([
        ['charger', 'beta', '2.0.0'],
        ['gateway', 'stable', '1.0.0'],
      ]);
      expect(store.devices.get('gw-1')).toMatchObject({ product: 'gateway', tags: [], attributes: {} });
      // Its channel names no release: the product stays unknown (it follows any product's channel of that name).
      expect(store.devices.get('odd-1')!.product).toBeNull();
      expect(store.rollbacks.list('gw-1')[0]).toMatchObject({ id: 'rb_1', outcome: null });
      const rollouts = store.rollouts.list();
      expect(rollouts.map((r) => [r.product, r.version, r.kind, r.state, r.target.channel, r.phases]).sort()).toEqual([
        ['charger', '2.0.0', 'publish', 'running', 'beta', [{ percent: 100 }]],
        ['gateway', '1.0.0', 'publish', 'running', 'stable', [{ percent: 100 }]],
      ]);
      for (const r of rollouts) expect(r.id).toMatch(/^ro_[0-9a-f]{16}$/);
      // The same version may now exist in two products.
      store.releases.insert({ product: 'charger', version: '1.0.0', sha256: 'c'.repeat(64), size: 1, compatible: ['evc'], manifest: Buffer.from('{}'), signature: Buffer.from('s'), signer: 'FP', created: '2026-01-05T00:00:00Z' });
      expect(store.releases.exists('charger', '1.0.0')).toBe(true);
      expect(() => store.releases.insert({ product: 'gateway', version: '1.0.0', sha256: 'd'.repeat(64), size: 1, compatible: [], manifest: Buffer.from('{}'), signature: Buffer.from('s'), signer: 'FP', created: 'x' })).toThrow(
        expect.objectContaining({ code: 'RELEASE_EXISTS' }),
      );
    } finally {
      store.close();
    }
  });
});
