/** fsync helpers: a rename is only durable once the directory holding it is synced too. */
import { open } from 'node:fs/promises';

/** fsyncs a file or directory by path. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
