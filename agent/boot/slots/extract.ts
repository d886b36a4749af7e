/**
 * Extracts a checked tree payload (shared/tree.ts walkTree) into a directory of the inactive
 * slot, safely: parents are created or must be real directories (never symlinks), existing
 * entries in the way are removed first, files are opened O_NOFOLLOW|O_EXCL, and modes,
 * ownership (as root), symlinks and hard links are set as the tar says. Each written entry's
 * record goes into `records`, so the expected digest comes from what was written.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { posix } from 'node:path';
import { runTool } from '../../../shared/run-tool.js';
import { OtaError, errorMessage, isOtaError } from '../../../shared/errors.js';
import { walkTree, type TreeEntry, type TreeLimits, type TreeSummary } from '../../../shared/tree.js';
import { CopyingWriteBehind, WRITE_BATCH } from '../../../shared/write-behind.js';
import { entryRecord, ownershipKept } from './tree-digest.js';

/** Where and how a tree is extracted. */
export interface ExtractOptions {
  /** The slot's root directory. */
  readonly root: string;
  /** Slot-relative directory receiving the tree: '' for an archive, the module target without its leading '/'. */
  readonly prefix: string;
  readonly limits: TreeLimits;
  /** Records of the slot's entries (slot-relative path → record), updated as entries are written. */
  readonly records: Map<string, string>;
  /** File bytes written, as they are written. */
  readonly onBytes?: (n: number) => void;
}

interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

const O_NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function wrap(what: string, cause: unknown): OtaError {
  if (isOtaError(cause)) return cause;
  return new OtaError('SLOT_WRITE_FAILED', `${what} failed (${errorMessage(cause)})`, { cause });
}

/** Creates the parents of slot-relative `rel` as needed; refuses any that is not a real directory. */
export class ParentMaker {
  private readonly known = new Set<string>(['']);
  private readonly own = ownershipKept();

  constructor(
    private readonly root: string,
    private readonly records: Map<string, string>,
  ) {}

  /** Makes sure every parent of `rel` is a directory (not a symlink), creating missing ones 0755. */
  async ensure(rel: string): Promise<void> {
    const parts = rel.split('/').slice(0, -1);
    for (let k = 1; k <= parts.length; k++) {
      const dir = parts.slice(0, k).join('/');
      if (this.known.has(dir)) continue;
      const abs = posix.join(this.root, dir);
      const st = await lstat(abs).catch(() => undefined);
      if (!st) {
        await mkdir(abs, 0o755);
        await chmod(abs, 0o755);
        const uid = process.getuid?.() ?? 0;
        const gid = process.getgid?.() ?? 0;
        this.records.set(dir, entryRecord({ type: 'directory', mode: 0o755, uid, gid }, this.own));
      } else if (!st.isDirectory()) {
        throw new OtaError('SLOT_UNSAFE_PATH', `slot path /${dir} (in ${this.root}) is a ${st.isSymbolicLink() ? 'symlink' : 'non-directory'}; refusing to write /${rel} through it`);
      }
      this.known.add(dir);
    }
  }

  /** Forgets `rel` and everything under it (it was removed). */
  forget(rel: string): void {
    for (const d of this.known) if (d === rel || d.startsWith(`${rel}/`)) this.known.delete(d);
  }
}

/** Removes `rel` and its records (and its children's), when something is in the way. */
async function clear(abs: string, rel: string, records: Map<string, string>, parents: ParentMaker): Promise<void> {
  await rm(abs, { recursive: true, force: true });
  for (const k of records.keys()) if (k === rel || k.startsWith(`${rel}/`)) records.delete(k);
  parents.forget(rel);
}

async function writeFile(abs: string, entry: TreeEntry, body: AsyncIterable<Buffer>, own: boolean, bufs: [Buffer, Buffer], onBytes?: (n: number) => void): Promise<string> {
  const fh = await open(abs, O_NEW_FILE, 0o600);
  const hash = createHash('sha256');
  // Batched writes, one in flight, every byte written even after a short write (write-behind.ts).
  // The body's chunks are lent (walkTree): they are copied into the extraction's two buffers.
  const out = new CopyingWriteBehind(fh, 0, undefined, WRITE_BATCH, bufs);
  try {
    for await (const chunk of body) {
      await out.add(chunk);
      hash.update(chunk);
      onBytes?.(chunk.length);
    }
    await out.drain();
    // chown before chmod: chown clears set-id bits.
    if (own) await fh.chown(entry.uid, entry.gid);
    await fh.chmod(entry.mode & 0o7777);
    await fh.utimes(entry.mtime, entry.mtime);
  } finally {
    await out.abandon();
    await fh.close();
  }
  return hash.digest('hex');
}

async function makeNode(abs: string, entry: TreeEntry, own: boolean): Promise<void> {
  const args =
    entry.type === 'fifo'
      ? ['mkfifo', abs]
      : ['mknod', abs, entry.type === 'block-device' ? 'b' : 'c', String(entry.devmajor ?? 0), String(entry.devminor ?? 0)];
  await runTool(args[0]!, args.slice(1));
  if (own) await lchown(abs, entry.uid, entry.gid);
  await chmod(abs, entry.mode & 0o7777);
}

/** Extracts one tree payload; returns walkTree's totals. */
export async function extractTree(chunks: AsyncIterable<Buffer>, opts: ExtractOptions): Promise<TreeSummary> {
  const { root, prefix, records } = opts;
  const own = ownershipKept();
  const parents = new ParentMaker(root, records);
  const dirs = new Map<string, DirMeta>();
  // One pair of write buffers for the whole tree: its files are written one after the other.
  const bufs: [Buffer, Buffer] = [Buffer.allocUnsafeSlow(WRITE_BATCH), Buffer.allocUnsafeSlow(WRITE_BATCH)];
  const summary = await walkTree(chunks, opts.limits, async (entry, body) => {
    const rel = entry.path === '' ? prefix : prefix ? `${prefix}/${entry.path}` : entry.path;
    // An archive's "./" is the slot root, a mount point whose mode is not the tree's to set.
    if (rel === '') return;
    const abs = posix.join(root, rel);
    try {
      await parents.ensure(rel);
      const existing = await lstat(abs).catch(() => undefined);
      if (entry.type === 'directory') {
        if (existing && !existing.isDirectory()) await clear(abs, rel, records, parents);
        if (!existing || !existing.isDirectory()) await mkdir(abs, 0o700);
        // Modes and times of directories are set at the end: a read-only directory would
        // refuse its children, and every child written would bump its mtime.
        dirs.set(rel, { mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime });
        records.set(rel, entryRecord({ type: 'directory', mode: entry.mode, uid: entry.uid, gid: entry.gid }, own));
        return;
      }
      if (existing) await clear(abs, rel, records, parents);
      if (entry.type === 'file') {
        const sha256 = await writeFile(abs, entry, body, own, bufs, opts.onBytes);
        records.set(rel, entryRecord({ type: 'file', mode: entry.mode, uid: entry.uid, gid: entry.gid, size: entry.size, sha256 }, own));
      } else if (entry.type === 'link') {
        const targetRel = prefix ? `${prefix}/${entry.linkname!}` : entry.linkname!;
        await link(posix.join(root, targetRel), abs);
        const rec = records.get(targetRel);
        if (rec !== undefined) records.set(rel, rec);
      } else if (entry.type === 'symlink') {
        await symlink(entry.linkname!, abs);
        if (own) await lchown(abs, entry.uid, entry.gid);
        await lutimes(abs, entry.mtime, entry.mtime);
        records.set(rel, entryRecord({ type: 'symlink', mode: 0o777, uid: entry.uid, gid: entry.gid, linkname: entry.linkname! }, own));
      } else {
        await makeNode(abs, entry, own);
        records.set(rel, entryRecord({ type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, devmajor: entry.devmajor ?? 0, devminor: entry.devminor ?? 0 }, own));
      }
    } catch (cause) {
      throw wrap(`${opts.limits.what}: writing /${rel}`, cause);
    }
  });
  // Deepest first, so a parent's mtime is set after its children's.
  for (const rel of [...dirs.keys()].sort((a, b) => b.length - a.length)) {
    const d = dirs.get(rel)!;
    const abs = posix.join(root, rel);
    try {
      if (own) await lchown(abs, d.uid, d.gid);
      await chmod(abs, d.mode & 0o7777);
      await utimes(abs, d.mtime, d.mtime);
    } catch (cause) {
      throw wrap(`${opts.limits.what}: setting the mode of /${rel}`, cause);
    }
  }
  return summary;
}
