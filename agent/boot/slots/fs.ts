/**
 * An fs slot: a directory holding a root file system (mounted by the slot's mount command when
 * it has one). An `archive` empties it and extracts the whole tree; `module`s without an
 * archive first make it equal to the active slot, then each replaces its `<target>`.
 * The data is made durable with syncfs (`sync -f`), and the tree's digest is read back.
 */
import { chmod, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { runTool } from '../../../shared/run-tool.js';
import type { PayloadEntry } from '../../../shared/bundle-reader.js';
import { OtaError, errorMessage, isOtaError } from '../../../shared/errors.js';
import type { SlotConfig } from '../../config/types.js';
import { durablyAsync } from '../../infra/durable.js';
import { stopOptimizing } from '../../infra/young-generation.js';
import { extractTree, ParentMaker } from './extract.js';
import { syncTree } from './sync.js';
import { combineRecords, entryRecord, ownershipKept, treeDigest } from './tree-digest.js';
import type { SlotBackend, SlotDigest, WriteOptions, WriteResult, WriteStats } from './types.js';

function wrap(slot: SlotConfig, what: string, cause: unknown): OtaError {
  if (isOtaError(cause)) return cause;
  return new OtaError('SLOT_WRITE_FAILED', `slot ${slot.name} (${slot.path}): ${what} failed (${errorMessage(cause)})`, { cause });
}

/** Removes everything inside `dir`, not `dir` itself (it may be a mount point). */
async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(posix.join(dir, name), { recursive: true, force: true });
}

/** The fs slot backend. */
export class FsSlot implements SlotBackend {
  constructor(readonly config: SlotConfig) {}

  /** A file system's free space is no bound on an archive that replaces it; not checked here. */
  async capacity(): Promise<number | undefined> {
    return undefined;
  }

  private async checkRoot(): Promise<void> {
    const st = await lstat(this.config.path).catch((cause: unknown) => {
      throw wrap(this.config, 'opening', cause);
    });
    if (!st.isDirectory()) throw new OtaError('SLOT_WRITE_FAILED', `slot ${this.config.name}: ${this.config.path} is not a directory`);
  }

  async write(payloads: AsyncIterable<PayloadEntry>, opts: WriteOptions): Promise<WriteResult> {
    const slot = this.config;
    const root = slot.path;
    await this.checkRoot();
    const records = new Map<string, string>();
    const stats: WriteStats = { bytesWritten: 0 };
    let started = false;
    const countBytes = (n: number): void => {
      stats.bytesWritten += n;
    };
    for await (const p of payloads) {
      // The stream has started: no TurboFan from here (young-generation.ts).
      stopOptimizing();
      const m = p.module;
      const what = `payload "${m.name}"`;
      if (m.type === 'image') throw new OtaError('PAYLOAD_SLOT_MISMATCH', `slot ${slot.name}: ${what} is an image; an fs slot takes archives and modules`);
      if (m.type === 'archive') {
        if (started) throw new OtaError('PAYLOAD_SLOT_MISMATCH', `slot ${slot.name}: ${what}: an archive must come first, and only once`);
        try {
          await emptyDir(root);
        } catch (cause) {
          throw wrap(slot, 'emptying the slot', cause);
        }
        await extractTree(p.chunks, { root, prefix: '', records, limits: { kind: 'archive', unpackedSize: m.unpackedSize ?? 0, what }, onBytes: countBytes });
        started = true;
        continue;
      }
      if (!started) {
        // Modules only: the new slot starts as a copy of the running system, minus every
        // module target this bundle replaces (no point copying what is thrown away next).
        const targets = opts.modules.flatMap((x) => (x.target ? [x.target.slice(1)] : []));
        const sync = await syncTree(opts.active.path, root, targets, records);
        stats.copied = sync.copied;
        stats.unchanged = sync.unchanged;
        stats.removed = sync.removed;
        stats.bytesWritten += sync.bytesWritten;
        started = true;
      }
      await this.replaceModule(p, records, countBytes);
    }
    await durablyAsync('slot-sync', `slot ${slot.name} syncfs`, async () => {
      try {
        // syncfs(2) of the slot's file system; -f is understood by coreutils and busybox alike.
        await runTool('sync', ['-f', root]);
      } catch (cause) {
        throw wrap(slot, 'syncfs', cause);
      }
    });
    opts.onDurable?.({ slotBytes: stats.bytesWritten });
    return { digest: { kind: 'fs', ...combineRecords(records) }, stats };
  }

  private async replaceModule(p: PayloadEntry, records: Map<string, string>, onBytes: (n: number) => void): Promise<void> {
    const m = p.module;
    const root = this.config.path;
    const rel = m.target!.slice(1);
    const abs = posix.join(root, rel);
    try {
      await new ParentMaker(root, records).ensure(rel);
      await rm(abs, { recursive: true, force: true });
      for (const k of records.keys()) if (k === rel || k.startsWith(`${rel}/`)) records.delete(k);
      await mkdir(abs, 0o755);
      await chmod(abs, 0o755);
      records.set(rel, entryRecord({ type: 'directory', mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, ownershipKept()));
    } catch (cause) {
      throw wrap(this.config, `preparing module target ${m.target!}`, cause);
    }
    await extractTree(p.chunks, {
      root,
      prefix: rel,
      records,
      limits: { kind: 'module', target: m.target!, unpackedSize: m.unpackedSize ?? 0, what: `payload "${m.name}"` },
      onBytes,
    });
  }

  async readBack(): Promise<SlotDigest> {
    await this.checkRoot();
    try {
      return { kind: 'fs', ...(await treeDigest(this.config.path)) };
    } catch (cause) {
      throw wrap(this.config, 'reading back', cause);
    }
  }
}
