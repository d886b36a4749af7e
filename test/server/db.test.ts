/** The database: pragmas, migrations recorded once, a newer schema refused. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../server/db/open.js';
import { MIGRATIONS } from '../../server/db/migrations.js';
import { tempDir } from '../helpers/cli.js';

let dir: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  dir = await tempDir('otaab-db-');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('openDatabase', () => {
  it('uses WAL and synchronous=FULL and records each migration once', () => {
    const file = join(dir.dir, 'a.db');
    const first = openDatabase(file);
    const second = openDatabase(file);
    try {
      expect(first.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(first.pragma('synchronous', { simple: true })).toBe(2);
      expect(first.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(second.prepare('SELECT version, name FROM migrations').all()).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      first.close();
      second.close();
    }
  });

  it('refuses a database written by a newer server', () => {
    const file = join(dir.dir, 'b.db');
    const db = openDatabase(file);
    db.prepare('INSERT INTO migrations (version, name, applied) VALUES (?, ?, ?)').run(999, 'from the future', new Date().toISOString());
    db.close();
    expect(() => openDatabase(file)).toThrow(expect.objectContaining({ code: 'SERVER_DB_TOO_NEW' }));
  });

  it('applies only the migrations a database lacks', () => {
    const file = join(dir.dir, 'c.db');
    openDatabase(file, MIGRATIONS).close();
    const next = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'test column', sql: 'ALTER TABLE devices ADD COLUMN note TEXT' }];
    const db = openDatabase(file, next);
    try {
      expect(db.prepare('SELECT max(version) FROM migrations').pluck().get()).toBe(next.length);
      expect(db.prepare('SELECT note FROM devices').all()).toEqual([]);
    } finally {
      db.close();
    }
  });
});
