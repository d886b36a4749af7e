// The agent's SQLite store: durability pragmas, migrations, one transaction in flight,
// compare-and-set state changes, slot records, the downgrade floor and the report outbox.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../agent/store/migrations.js';
import { STORE_FILE } from '../../agent/store/db.js';
import { Store } from '../../agent/store/store.js';
import type { NewTransaction } from '../../agent/store/transactions.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function fresh(): Promise<{ dir: string; store: Store }> {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-store-'));
  dirs.push(dir);
  return { dir, store: Store.open(dir) };
}

const newTx = (id: string): NewTransaction => ({
  id,
  kind: 'install',
  origin: 'local',
  version: '1.0.0',
  state: 'downloading',
  sourceSlot: 'A',
  targetSlot: 'B',
  source: '/media/usb/b.otab',
  manifest: Buffer.from('{}'),
  payloadsOffset: 2048,
});

describe('agent store', () => {
  it('opens with WAL, synchronous=FULL and the latest schema version', async () => {
    const { dir, store } = await fresh();
    store.close();
    const db = new Database(join(dir, STORE_FILE));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    // The connection's synchronous setting is per connection: check what Store.open sets.
    const again = Store.open(dir);
    const raw = (again as unknown as { sdb: { db: Database.Database } }).sdb.db;
    expect(raw.pragma('synchronous', { simple: true })).toBe(2);
    again.close();
  });

  it('refuses a store written by a newer agent', async () => {
    const { dir, store } = await fresh();
    store.close();
    const db = new Database(join(dir, STORE_FILE));
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => Store.open(dir)).toThrow(expect.objectContaining({ code: 'STORE_TOO_NEW' }));
  });

  it('keeps at most one transaction in flight', async () => {
    const { store } = await fresh();
    store.write('start', (w) => w.insert(newTx('t1')));
    expect(() => store.write('start', (w) => w.insert(newTx('t2')))).toThrow(expect.objectContaining({ code: 'TRANSACTION_IN_PROGRESS' }));
    const t1 = store.current()!;
    const moved = store.write('to failed', (w) => w.enter(t1, 'failed', 'install:X'));
    store.write('finish', (w) => w.finish(moved));
    expect(store.current()).toBeUndefined();
    store.write('start', (w) => w.insert(newTx('t2')));
    expect(store.current()!.id).toBe('t2');
    store.close();
  });

  it('moves states compare-and-set, counting transitions and keeping the previous state and reason', async () => {
    const { store } = await fresh();
    const t = store.write('start', (w) => w.insert(newTx('t1')));
    expect(t.transitions).toBe(1);
    const t2 = store.write('next', (w) => w.enter(t, 'installed'));
    expect(t2).toMatchObject({ state: 'installed', prevState: 'downloading', transitions: 2, reason: null });
    // A second writer holding the old snapshot loses.
    expect(() => store.write('stale', (w) => w.enter(t, 'installed'))).toThrow(expect.objectContaining({ code: 'TRANSACTION_CHANGED' }));
    const t3 = store.write('progress', (w) => w.progress(t2, { bytesRead: 10, durableOffset: 5, resumeIndex: 0, resumeDataOffset: 3072, step: 's' }));
    expect(t3).toMatchObject({ bytesRead: 10, durableOffset: 5, resumeIndex: 0, resumeDataOffset: 3072, step: 's', transitions: 2 });
    const t4 = store.write('roll', (w) => w.enter(t3, 'failed', 'boot-failed'));
    expect(t4).toMatchObject({ step: null, reason: 'boot-failed', payloadsOffset: 2048 });
    expect(t4.manifest).toEqual(Buffer.from('{}'));
    store.close();
  });

  it('records slots and raises the highest committed version only upwards', async () => {
    const { store } = await fresh();
    expect(store.slots().A).toMatchObject({ status: 'unknown', version: null });
    store.write('commit', (w) => {
      w.slot('B', { version: '2.0.0', status: 'committed', transactionId: 't' });
      w.committedVersion('2.0.0');
      w.committedVersion('1.9.0');
    });
    expect(store.slots().B).toMatchObject({ status: 'committed', version: '2.0.0' });
    expect(store.slots().B.committedAt).not.toBeNull();
    expect(store.highestCommitted()).toBe('2.0.0');
    store.write('bad', (w) => w.slotStatus('B', 'bad'));
    expect(store.slots().B).toMatchObject({ status: 'bad', version: '2.0.0' });
    store.close();
  });

  it('keeps reports until sent, coalescing unsent progress reports', async () => {
    const { store } = await fresh();
    const report = (id: string, extra: object = {}) => ({ id, transaction: 't', version: '1.0.0', state: 'downloading' as const, at: 'now', ...extra });
    store.write('r', (w) => {
      w.report(report('r1'));
      w.report(report('p1', { progress: { bytes: 1, total: 10 } }), 'progress');
      w.report(report('p2', { progress: { bytes: 5, total: 10 } }), 'progress');
    });
    const pending = store.pendingReports();
    expect(pending.map((p) => [p.id, p.kind])).toEqual([['r1', 'state'], ['p1', 'progress']]);
    expect(pending[1]!.body.progress).toEqual({ bytes: 5, total: 10 });
    store.markReportSent('r1');
    store.markReportSent('p1');
    expect(store.pendingReports()).toEqual([]);
    store.write('r', (w) => w.report(report('p3', { progress: { bytes: 9, total: 10 } }), 'progress'));
    expect(store.pendingReports().map((p) => p.id)).toEqual(['p3']);
    expect(store.reports('t')).toHaveLength(3);
    store.close();
  });

  it('keeps a progress report that was replaced while on its way unsent, to go out next', async () => {
    const { store } = await fresh();
    const progress = (id: string, bytes: number) => ({ id, transaction: 't', version: '1.0.0', state: 'downloading' as const, at: 'now', progress: { bytes, total: 10 } });
    store.write('r', (w) => w.report(progress('p1', 1), 'progress'));
    const [onItsWay] = store.pendingReports();
    store.write('r', (w) => w.report(progress('p2', 5), 'progress'));
    // The server acknowledges p1; the row holds p2 now, which it has not seen.
    expect(store.markReportSent(onItsWay!.id, String(onItsWay!.body.id))).toBe(false);
    expect(store.pendingReports().map((p) => p.body.id)).toEqual(['p2']);
    expect(store.markReportSent(onItsWay!.id, 'p2')).toBe(true);
    expect(store.pendingReports()).toEqual([]);
    // The device keeps the last body only: the server holds p1 and p2, the device p2.
    expect(store.reports('t').map((r) => r.body.id)).toEqual(['p2']);
    store.close();
  });

  it('keeps history events in order, per transaction', async () => {
    const { store } = await fresh();
    store.write('e', (w) => {
      w.insert(newTx('t1'));
      w.event({ transactionId: 't1', type: 'transition', toState: 'downloading', slot: 'A' });
      w.event({ type: 'boot', slot: 'A', details: { passed: true } });
      w.event({ transactionId: 't1', type: 'health', slot: 'B', reason: 'health-check:web', details: { passed: false } });
    });
    expect(store.events({ transactionId: 't1' }).map((e) => e.type)).toEqual(['transition', 'health']);
    expect(store.events().map((e) => e.type)).toEqual(['transition', 'boot', 'health']);
    expect(store.events({ limit: 1 })[0]!.details).toEqual({ passed: false });
    store.close();
  });
});
