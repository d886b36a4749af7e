/** An independent view of a directory tree, to compare slots in tests. */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** What a test compares per entry. */
export interface EntrySnapshot {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  sha256?: string;
  link?: string;
  ino: number;
  mtime: number;
}

/** Every entry under `root` (root excluded), by relative path, never following symlinks. */
export async function snapshot(root: string, skip: (rel: string) => boolean = () => false): Promise<Map<string, EntrySnapshot>> {
  const out = new Map<string, EntrySnapshot>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(rel ? join(root, rel) : root)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      if (skip(p)) continue;
      const abs = join(root, p);
      const st = await lstat(abs);
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, ino: st.ino, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        out.set(p, { ...base, type: 'dir' });
        await walk(p);
      } else if (st.isFile()) out.set(p, { ...base, type: 'file', sha256: createHash('sha256').update(await readFile(abs)).digest('hex') });
      else if (st.isSymbolicLink()) out.set(p, { ...base, type: 'symlink', link: await readlink(abs), mode: 0 });
      else out.set(p, { ...base, type: 'other' });
    }
  };
  await walk('');
  return out;
}

/** The snapshot without inode numbers and times, for equality of content and metadata. */
export function comparable(s: Map<string, EntrySnapshot>): Record<string, Omit<EntrySnapshot, 'ino' | 'mtime'>> {
  const out: Record<string, Omit<EntrySnapshot, 'ino' | 'mtime'>> = {};
  for (const [k, v] of s) {
    const { ino: _ino, mtime: _mtime, ...rest } = v;
    out[k] = rest;
  }
  return out;
}
