/** Opening a bundle file for reading, with a coded error instead of a raw ENOENT mid-stream. */
import { createReadStream, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { OtaError, errorMessage } from './errors.js';
import { CHUNK } from './hashing.js';

/** A read stream of the bundle at `path`, or BUNDLE_UNREADABLE naming the path and the reason. */
export async function openBundleFile(path: string): Promise<ReadStream> {
  let fh;
  try {
    fh = await open(path, 'r');
    if (!(await fh.stat()).isFile()) {
      // The errno a read of a directory would give, so callers handle both alike.
      const err: NodeJS.ErrnoException = new Error('not a regular file');
      err.code = 'EISDIR';
      throw err;
    }
  } catch (cause) {
    await fh?.close();
    const why = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(cause);
    throw new OtaError('BUNDLE_UNREADABLE', `bundle ${path}: cannot be read (${why})`, { cause });
  }
  return createReadStream('', { fd: fh, highWaterMark: CHUNK });
}
