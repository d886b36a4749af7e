/** Durability helpers: a rename is only durable once its directory is fsynced. */
import { open } from 'node:fs/promises';

/** fsyncs a directory, so entries created, renamed or removed in it survive a power cut. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
