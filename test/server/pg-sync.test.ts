// The PostgreSQL handle: SQL translation (always), and with OTAAB_TEST_DATABASE_URL the
// synchronous statements, transactions and the write lock against a real PostgreSQL.
import { describe, expect, it } from 'vitest';
import { translate } from '../../server/db/pg-sync.js';
import { Store } from '../../server/db/store.js';
import { resolveConfig } from '../../server/config.js';
import { ON_POSTGRES, schemaUrl, TEST_DATABASE_ENV } from '../../scripts/fleet/test-database.js';

describe('translate', () => {
  it('numbers placeholders, leaves quoted text alone and types a NULL-tested parameter', () => {
    expect(translate("SELECT * FROM t WHERE a = ? AND b = '?' AND (? IS NULL OR c = ?)")).toBe("SELECT * FROM t WHERE a = $1 AND b = '?' AND ($2::text IS NULL OR c = $3)");
  });
  it('rewrites group_concat with a newline and quotes camelCase aliases', () => {
    expect(translate('SELECT group_concat(tag, char(10)) AS tags, requested_by AS requestedBy FROM x')).toBe('SELECT string_agg(tag, chr(10)) AS tags, requested_by AS "requestedBy" FROM x');
  });
});

describe('databaseUrl', () => {
  it('takes a postgres:// URL and refuses anything else with SERVER_CONFIG_INVALID', () => {
    const layer = (v: unknown) => [{ source: 'file' as const, name: 't', values: { databaseUrl: v }, base: '/' }];
    expect(resolveConfig(layer('postgres://u:p@db:5432/otaab')).databaseUrl).toBe('postgres://u:p@db:5432/otaab');
    expect(() => resolveConfig(layer('mysql://db/otaab'))).toThrow(expect.objectContaining({ code: 'SERVER_CONFIG_INVALID' }));
  });
});

describe.skipIf(!ON_POSTGRES)('on PostgreSQL', () => {
  it('runs the query groups synchronously; a failed transaction leaves nothing; the unreachable is SERVER_DB_UNAVAILABLE', () => {
    const url = schemaUrl(process.env[TEST_DATABASE_ENV]!, `t_sync_${Date.now()}`);
    const s = Store.open('/nonexistent', url);
    try {
      expect(s.engine).toBe('postgres');
      const t = s.tokens.create('ops', 'a');
      expect(s.tokens.list().map((x) => x.id)).toEqual([t.id]);
      expect(() =>
        s.transaction(() => {
          s.tokens.create('ops', 'b');
          throw new Error('abandon');
        }),
      ).toThrow('abandon');
      expect(s.tokens.list()).toHaveLength(1);
    } finally {
      s.close();
    }
    const u = new URL(process.env[TEST_DATABASE_ENV]!);
    u.port = '1';
    expect(() => Store.open('/nonexistent', u.toString())).toThrow(expect.objectContaining({ code: 'SERVER_DB_UNAVAILABLE' }));
  });
});
