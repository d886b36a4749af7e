/** Durability: a file's data, and a rename or a new entry, survive a power cut only once fsynced. */
import { chmod, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** fsyncs a file or a directory by path (a directory: the entries created, renamed or removed in it). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces the file at `path` power-safely: writes `tmp` (created with `mode` from its first
 * byte, so a secret is never readable by others, not even briefly), fsyncs it, renames it over
 * `path` and fsyncs the directory. A crash leaves the old file or the new one, never half of
 * one; on failure the temporary file is removed and the error thrown.
 */
export async function replaceFileDurably(path: string, data: string | Uint8Array, mode: number, tmp = join(dirname(path), `.${basename(path)}.tmp`)): Promise<void> {
  await rm(tmp, { force: true });
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // The mode given to open() is narrowed by the umask; this one is exact.
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(dirname(path));
}
