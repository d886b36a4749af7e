/**
 * A deterministic digest of a slot's tree: one record per entry (type, mode, ownership, size,
 * content hash or link target or device numbers; never times, which a copy need not keep),
 * combined in sorted path order. The writer builds the expected digest from what it wrote;
 * the read-back walks the slot after the fsync and must arrive at the same one.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '../../../shared/hashing.js';

/** The metadata a record covers. */
export interface EntryMeta {
  type: 'file' | 'directory' | 'symlink' | 'character-device' | 'block-device' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

/** Whether ownership is part of records: only root can set it, so only then is it checked. */
export function ownershipKept(): boolean {
  return process.getuid?.() === 0;
}

/** One entry's record. */
export function entryRecord(m: EntryMeta, ownership = ownershipKept()): string {
  const owner = ownership ? `${m.uid}:${m.gid}` : '-';
  switch (m.type) {
    case 'file':
      return `f ${(m.mode & 0o7777).toString(8)} ${owner} ${m.size ?? 0} ${m.sha256 ?? ''}`;
    case 'directory':
      return `d ${(m.mode & 0o7777).toString(8)} ${owner}`;
    case 'symlink':
      return `l ${owner} ${m.linkname ?? ''}`;
    case 'fifo':
      return `p ${(m.mode & 0o7777).toString(8)} ${owner}`;
    default:
      return `${m.type === 'block-device' ? 'b' : 'c'} ${(m.mode & 0o7777).toString(8)} ${owner} ${m.devmajor ?? 0}:${m.devminor ?? 0}`;
  }
}

/** Combines records (path relative to the slot root → record) into the tree digest. */
export function combineRecords(records: ReadonlyMap<string, string>): { entries: number; sha256: string } {
  const hash = createHash('sha256');
  for (const path of [...records.keys()].sort()) hash.update(`${path}\0${records.get(path)!}\n`);
  return { entries: records.size, sha256: hash.digest('hex') };
}

/** sha256 of a file's content, read into reused buffers (shared/hashing.ts). */
export async function hashContent(path: string): Promise<string> {
  return (await hashFile(path)).sha256;
}

/** The metadata of an entry on disk (sockets return undefined: they are never copied). */
export async function metaOf(abs: string, st: Stats): Promise<EntryMeta | undefined> {
  const base = { mode: st.mode, uid: st.uid, gid: st.gid };
  if (st.isFile()) return { ...base, type: 'file', size: st.size, sha256: await hashContent(abs) };
  if (st.isDirectory()) return { ...base, type: 'directory' };
  if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: await readlink(abs) };
  if (st.isFIFO()) return { ...base, type: 'fifo' };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    return { ...base, type: st.isBlockDevice() ? 'block-device' : 'character-device', devmajor: major, devminor: minor };
  }
  return undefined;
}

/** Walks `root` without following symlinks and returns its records (the root itself excluded). */
export async function treeRecords(root: string): Promise<Map<string, string>> {
  const records = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(rel ? join(root, rel) : root)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const abs = join(root, p);
      const st = await lstat(abs);
      const meta = await metaOf(abs, st);
      if (!meta) continue;
      records.set(p, entryRecord(meta));
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk('');
  return records;
}

/** The digest of the tree under `root` as it is on disk now. */
export async function treeDigest(root: string): Promise<{ entries: number; sha256: string }> {
  return combineRecords(await treeRecords(root));
}
