/** Durability: a file's data, and a rename or a new entry, survive a power cut only once fsynced. */
import { open } from 'node:fs/promises';

/** fsyncs a file or a directory by path (a directory: the entries created, renamed or removed in it). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
