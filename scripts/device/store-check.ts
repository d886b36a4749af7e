/**
 * Is the device's store intact? The data partition is copied off the (stopped) machine's
 * disk, checked with `e2fsck -n`, and the agent's SQLite store (agent.db with its WAL) is
 * copied out with debugfs and opened: `PRAGMA integrity_check` must say ok.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { DeviceImage } from './image.js';
import type { Vm } from './vm.js';

const MiB = 1 << 20;

/** The verdict and what was seen. */
export interface StoreCheck {
  ok: boolean;
  detail: string;
}

/** Checks the data partition and the store of `vm` (which must be off). */
export async function checkStore(vm: Vm, image: DeviceImage): Promise<StoreCheck> {
  const dir = await mkdtemp(join(vm.dir, 'store-'));
  try {
    const part = join(dir, 'data.img');
    await vm.readPart(image.offsets.data, 64 * MiB, part);
    // A journal to replay is what a power cut leaves (the kernel replays it at mount): replay
    // it in the copy, nothing else, then check the file system read-only (-n).
    await execa('e2fsck', ['-E', 'journal_only', '-y', part], { reject: false, stdin: 'ignore' });
    const fsck = await execa('e2fsck', ['-fn', part], { reject: false, stdin: 'ignore', all: true });
    if (fsck.exitCode !== 0) return { ok: false, detail: `e2fsck of the data partition: exit ${fsck.exitCode}: ${String(fsck.all).split('\n').slice(-5).join(' / ')}` };
    for (const f of ['agent.db', 'agent.db-wal']) {
      await execa('debugfs', ['-R', `dump /${f} ${join(dir, f)}`, part], { reject: false, stdin: 'ignore' });
    }
    if (!existsSync(join(dir, 'agent.db'))) return { ok: false, detail: 'no agent.db on the data partition' };
    const db = new Database(join(dir, 'agent.db'));
    try {
      const integrity = db.pragma('integrity_check', { simple: true }) as string;
      if (integrity !== 'ok') return { ok: false, detail: `integrity_check: ${integrity}` };
      const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
      return { ok: true, detail: `intact (${tables} tables, integrity_check ok)` };
    } finally {
      db.close();
    }
  } catch (err) {
    return { ok: false, detail: `could not read the store: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
