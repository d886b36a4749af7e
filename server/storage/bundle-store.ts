/**
 * Content-addressed bundle storage: `bundles/<sha256>` holds only complete, verified bundles.
 * Uploads are written under `tmp/` and renamed into place after verification, so a crash
 * leaves at worst a file in `tmp/` (emptied at start) or an unrecorded complete bundle (swept
 * at start), never a partial file under a bundle name.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { fsyncPath } from '../../shared/fsync.js';

const SHA256 = /^[0-9a-f]{64}$/;

/** A temporary file being written. */
export interface TempFile {
  path: string;
  handle: FileHandle;
}

/** The bundles/ and tmp/ directories of a data directory. */
export class BundleStore {
  readonly bundlesDir: string;
  readonly tmpDir: string;

  private constructor(dataDir: string) {
    this.bundlesDir = join(dataDir, 'bundles');
    this.tmpDir = join(dataDir, 'tmp');
  }

  /** Creates the directories if needed and empties tmp/ (left-overs of interrupted uploads). */
  static async open(dataDir: string): Promise<BundleStore> {
    const s = new BundleStore(dataDir);
    try {
      await mkdir(s.bundlesDir, { recursive: true });
      await rm(s.tmpDir, { recursive: true, force: true });
      await mkdir(s.tmpDir, { recursive: true });
    } catch (cause) {
      throw new OtaError('SERVER_DATA_UNUSABLE', `data directory ${dataDir}: cannot prepare bundles/ and tmp/ (${errorMessage(cause)})`, { cause });
    }
    return s;
  }

  /** Where the bundle with this sha256 lives. */
  path(sha256: string): string {
    if (!SHA256.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`);
    return join(this.bundlesDir, sha256);
  }

  /** Opens a new, exclusive temporary file. */
  async createTemp(): Promise<TempFile> {
    const path = join(this.tmpDir, `upload-${randomBytes(8).toString('hex')}`);
    return { path, handle: await open(path, 'wx', 0o644) };
  }

  /** Moves a complete, fsynced temporary file into place as `bundles/<sha256>`, durably. */
  async commit(tempPath: string, sha256: string): Promise<void> {
    await rename(tempPath, this.path(sha256));
    await fsyncPath(this.bundlesDir);
  }

  /** Removes a temporary file that will not be committed. */
  async discard(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true });
  }

  /** Removes a stored bundle (whose release could not be recorded). */
  async remove(sha256: string): Promise<void> {
    await rm(this.path(sha256), { force: true });
    await fsyncPath(this.bundlesDir);
  }

  /** Deletes every file in bundles/ that `keep` does not name; returns what was removed. */
  async sweep(keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.bundlesDir)) {
      if (keep.has(name)) continue;
      await rm(join(this.bundlesDir, name), { recursive: true, force: true });
      removed.push(name);
    }
    if (removed.length > 0) await fsyncPath(this.bundlesDir);
    return removed;
  }
}
