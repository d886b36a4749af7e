/**
 * Content digests of slots and of the releases they may hold, computed here, independently of
 * the agent's own read-back code: a power-cut invariant that trusted the agent to tell what a
 * slot holds would prove nothing. An fs slot's digest covers every entry below the slot root
 * (path, type, permission bits, size, content or link target; not times); a raw slot is
 * compared on the image's length, since the partition behind the image keeps older bytes.
 */
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile } from '../../shared/hashing.js';

/** Digest of a directory tree: one line per entry, sorted by path, hashed. */
export async function treeDigest(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const abs = join(dir, name);
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        lines.push(`d ${path} ${mode}`);
        await walk(abs, path);
      } else if (st.isSymbolicLink()) {
        lines.push(`l ${path} -> ${await readlink(abs)}`);
      } else if (st.isFile()) {
        lines.push(`f ${path} ${mode} ${st.size} ${createHash('sha256').update(await readFile(abs)).digest('hex')}`);
      } else {
        lines.push(`o ${path} ${mode} ${st.rdev}`);
      }
    }
  };
  await walk(root, '');
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** sha256 of the first `length` bytes of a file (a raw slot holding an image of that length). */
export async function prefixDigest(path: string, length: number): Promise<string> {
  return (await hashFile(path, 0, length)).sha256;
}

/** sha256 of a whole file or, for a directory, its tree digest: "did this slot change at all". */
export async function slotFingerprint(path: string): Promise<string> {
  const st = await lstat(path);
  return st.isDirectory() ? `tree:${await treeDigest(path)}` : `raw:${(await hashFile(path)).sha256}`;
}

/** What a release writes into a slot, so that a slot can be recognised as holding it. */
export type ReleaseContent = { kind: 'fs'; digest: string } | { kind: 'raw'; length: number; sha256: string };

/** The release (by name) a slot holds, or null when its bytes match none of `known`. */
export async function identifySlot(path: string, known: ReadonlyMap<string, ReleaseContent>): Promise<string | null> {
  const st = await lstat(path);
  let tree: string | undefined;
  for (const [name, content] of known) {
    if (content.kind === 'fs') {
      if (!st.isDirectory()) continue;
      tree ??= await treeDigest(path);
      if (tree === content.digest) return name;
    } else {
      if (!st.isFile() || st.size < content.length) continue;
      if ((await prefixDigest(path, content.length)) === content.sha256) return name;
    }
  }
  return null;
}

/** Fills a raw slot file with a recognisable pattern, so that any write to it shows. */
export async function fillPattern(path: string, seed: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const block = Buffer.alloc(1 << 16);
    for (let i = 0; i < block.length; i++) block[i] = (i * 131 + seed * 17) & 0xff;
    for (let at = 0; at < size; at += block.length) await fh.write(block, 0, Math.min(block.length, size - at), at);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
