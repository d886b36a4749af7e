// The PostgreSQL handle: SQL translation (always), and with OTAAB_TEST_DATABASE_URL the
// synchronous statements, transactions and the write lock against a real PostgreSQL.
import { describe, expect, it } from 'vitest';
import { translate, WRITE_LOCK_KEY, type PgDatabase } from '../../server/db/pg-sync.js';
import type { CheckinRequest } from '../../shared/protocol.js';
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

  it('runs a check-in beside a held write lock; a rollback is delivered once across two instances', () => {
    const url = schemaUrl(process.env[TEST_DATABASE_ENV]!, `t_rowlock_${Date.now()}`);
    const a = Store.open('/nonexistent', url);
    const b = Store.open('/nonexistent', url);
    try {
      a.transaction(() => a.devices.enroll('gw-1', 'hw-a', 'stable', false));
      const rb = a.transaction(() => a.rollbacks.request('gw-1', 'tech', null));
      const c: CheckinRequest = { nonce: 'n1', slot: 'a', version: '1.0.0', state: 'idle' };
      // Instance a holds the cluster-wide write lock (a report, say) while b answers a check-in.
      const held = a.db as unknown as PgDatabase;
      held.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK_KEY})`);
      try {
        const step = b.checkinTransaction(() => {
          const r = b.devices.recordCheckin('gw-1', c, new Date());
          return { pending: r?.pending, delivered: r?.pending ? b.rollbacks.deliver(r.pending, new Date()) : null };
        });
        expect(step()).toEqual({ pending: rb.id, delivered: rb.id });
      } finally {
        held.query('COMMIT');
      }
      // The other instance, having read the request as waiting, delivers nothing.
      expect(a.checkinTransaction(() => a.rollbacks.deliver(rb.id, new Date()))()).toBeNull();
      expect(a.devices.get('gw-1')?.version).toBe('1.0.0');
      expect(a.checkinTransaction(() => a.devices.recordCheckin('nobody', c, new Date()))()).toBeUndefined();
    } finally {
      a.close();
      b.close();
    }
  });
});
