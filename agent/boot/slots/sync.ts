/**
 * Makes the inactive slot's tree equal to the active slot's, writing only what differs, for a
 * module install (DESIGN §3): the new slot starts as the running system, then gets its module
 * replaced. Nothing is followed through symlinks on either side. A file whose size and mtime
 * match is taken as equal (as rsync does); same size with another mtime is compared by content,
 * so flash is not rewritten with bytes it already holds. Records of the resulting entries come
 * from the active side, so the read-back checks the copy against the original. Like
 * `rsync -x`, it stays on the active slot's file system: a mount point (/proc, /data, ...)
 * is copied as an empty directory, never descended into.
 */
import type { Stats } from 'node:fs';
import { copyFile, chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { posix } from 'node:path';
import { runTool } from '../../../shared/run-tool.js';
import { OtaError, errorMessage, isOtaError } from '../../../shared/errors.js';
import { hashFile } from '../../../shared/hashing.js';
import { entryRecord, hashContent, metaOf, ownershipKept } from './tree-digest.js';

/** What a sync did. */
export interface SyncStats {
  copied: number;
  unchanged: number;
  removed: number;
  bytesWritten: number;
}

/** True when slot-relative `rel` is one of `excludes` or inside one. */
function excluded(rel: string, excludes: readonly string[]): boolean {
  return excludes.some((x) => rel === x || rel.startsWith(`${x}/`));
}

async function sameContent(a: string, b: string): Promise<boolean> {
  return (await hashContent(a)) === (await hashContent(b));
}

async function copyContent(src: string, dst: string): Promise<string> {
  // Hash the source while it is read for the copy, so the record is what was meant to land.
  const { sha256 } = await hashFile(src);
  await copyFile(src, dst);
  return sha256;
}

async function setMeta(abs: string, st: Stats, own: boolean, withTimes: boolean): Promise<void> {
  if (st.isSymbolicLink()) {
    if (own) await lchown(abs, st.uid, st.gid);
    await lutimes(abs, st.atime, st.mtime);
    return;
  }
  if (own) await lchown(abs, st.uid, st.gid);
  await chmod(abs, st.mode & 0o7777);
  if (withTimes) await utimes(abs, st.atime, st.mtime);
}

function sameType(a: Stats, b: Stats): boolean {
  return (
    (a.isFile() && b.isFile()) ||
    (a.isDirectory() && b.isDirectory()) ||
    (a.isSymbolicLink() && b.isSymbolicLink()) ||
    (a.isFIFO() && b.isFIFO()) ||
    (a.isCharacterDevice() && b.isCharacterDevice() && a.rdev === b.rdev) ||
    (a.isBlockDevice() && b.isBlockDevice() && a.rdev === b.rdev)
  );
}

/**
 * Syncs `src` into `dst` (both slot roots), leaving out `excludes` (slot-relative paths,
 * which the caller replaces next). Adds each resulting entry's record to `records`.
 */
export async function syncTree(src: string, dst: string, excludes: readonly string[], records: Map<string, string>): Promise<SyncStats> {
  const own = ownershipKept();
  const rootDev = (await lstat(src)).dev;
  const stats: SyncStats = { copied: 0, unchanged: 0, removed: 0, bytesWritten: 0 };
  // Hard links of the active tree are kept as links: inode → first slot-relative path.
  const inodes = new Map<string, string>();
  const dirs: Array<{ rel: string; st: Stats }> = [];

  const syncEntry = async (rel: string): Promise<void> => {
    const s = posix.join(src, rel);
    const d = posix.join(dst, rel);
    const st = await lstat(s);
    if (st.isSocket()) return;
    let dt = await lstat(d).catch(() => undefined);
    if (dt && !sameType(st, dt)) {
      await rm(d, { recursive: true, force: true });
      dt = undefined;
    }
    if (st.isDirectory()) {
      if (!dt) await mkdir(d, 0o700);
      records.set(rel, entryRecord((await metaOf(s, st))!, own));
      dirs.push({ rel, st });
      if (st.dev === rootDev) await syncDir(rel);
      else await emptyMountPoint(rel);
      return;
    }
    if (st.isFile() && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = inodes.get(key);
      if (first !== undefined) {
        const ft = await lstat(posix.join(dst, first));
        if (!dt || dt.ino !== ft.ino) {
          if (dt) await rm(d, { force: true });
          await link(posix.join(dst, first), d);
          stats.copied++;
        } else stats.unchanged++;
        records.set(rel, records.get(first)!);
        return;
      }
      inodes.set(key, rel);
    }
    if (st.isFile()) {
      let sha256: string;
      let equal = dt !== undefined && dt.size === st.size && dt.mtimeMs === st.mtimeMs;
      if (!equal && dt && dt.size === st.size) equal = await sameContent(s, d);
      if (equal) {
        sha256 = await hashContent(s);
        stats.unchanged++;
      } else {
        // A hard-linked target file is unlinked first, so the copy does not change its twin.
        if (dt) await rm(d, { force: true });
        sha256 = await copyContent(s, d);
        stats.copied++;
        stats.bytesWritten += st.size;
      }
      await setMeta(d, st, own, true);
      records.set(rel, entryRecord({ type: 'file', mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, sha256 }, own));
      return;
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(s);
      if (!dt || (await readlink(d)) !== target) {
        if (dt) await rm(d, { force: true });
        await symlink(target, d);
        stats.copied++;
      } else stats.unchanged++;
      await setMeta(d, st, own, true);
      records.set(rel, entryRecord({ type: 'symlink', mode: 0o777, uid: st.uid, gid: st.gid, linkname: target }, own));
      return;
    }
    // FIFOs and device nodes.
    if (!dt) {
      const meta = (await metaOf(s, st))!;
      const args = st.isFIFO() ? ['mkfifo', d] : ['mknod', d, st.isBlockDevice() ? 'b' : 'c', String(meta.devmajor), String(meta.devminor)];
      await runTool(args[0]!, args.slice(1));
      stats.copied++;
    } else stats.unchanged++;
    await setMeta(d, st, own, true);
    records.set(rel, entryRecord((await metaOf(s, st))!, own));
  };

  // Another file system is mounted here on the active side: the new slot gets the bare
  // directory, as the mount point it will be there too.
  const emptyMountPoint = async (rel: string): Promise<void> => {
    const ddir = posix.join(dst, rel);
    for (const name of await readdir(ddir)) {
      await rm(posix.join(ddir, name), { recursive: true, force: true });
      stats.removed++;
    }
  };

  const syncDir = async (rel: string): Promise<void> => {
    const sdir = rel ? posix.join(src, rel) : src;
    const ddir = rel ? posix.join(dst, rel) : dst;
    const names = (await readdir(sdir)).sort();
    const wanted = new Set(names);
    for (const name of (await readdir(ddir)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (!wanted.has(name) && !excluded(r, excludes)) {
        await rm(posix.join(ddir, name), { recursive: true, force: true });
        stats.removed++;
      }
    }
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      if (!excluded(r, excludes)) await syncEntry(r);
    }
  };

  try {
    await syncDir('');
    // Directory modes and times last: children written into them changed their mtimes.
    for (const { rel, st } of dirs.reverse()) await setMeta(posix.join(dst, rel), st, own, true);
  } catch (cause) {
    if (isOtaError(cause)) throw cause;
    throw new OtaError('SLOT_WRITE_FAILED', `copying the active slot ${src} into ${dst} failed (${errorMessage(cause)})`, { cause });
  }
  return stats;
}
