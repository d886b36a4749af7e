/**
 * Content-addressed bundle storage behind one interface, `BundleStorage`, with two backends:
 * this local directory (the default) and S3-compatible object storage (s3-store.ts).
 *
 * Locally, `bundles/<sha256>` holds only complete, verified bundles. Uploads are written under
 * `tmp/` and renamed into place after verification, so a crash leaves at worst a file in
 * `tmp/` (emptied at start) or an unrecorded complete bundle (swept at start), never a partial
 * file under a bundle name.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CHUNK } from '../../shared/hashing.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { fsyncPath } from '../../shared/fsync.js';
import { WriteBehind } from '../../shared/write-behind.js';

/**
 * One upload being written, before its sha256 is known. `write` hands over chunks in order (it
 * waits only when the backend is behind: bounded memory whatever the bundle's size), `finish`
 * makes every byte durable in the backend's staging area, `commit` puts the bundle under its
 * sha256, `discard` leaves nothing behind (also after `finish`).
 */
export interface BundleUpload {
  write(chunk: Buffer): Promise<void>;
  finish(): Promise<void>;
  commit(sha256: string): Promise<void>;
  discard(): Promise<void>;
}

/** Where a device can fetch a bundle from instead of through the server, or null. */
export type DirectUrl = string | null;

/** A stored bundle's bytes being read; `bytesRead` counts what was read so far (metrics). */
export type BundleStream = Readable & { readonly bytesRead: number };

/** What the server needs from a bundle store, whichever the backend. */
export interface BundleStorage {
  /** How logs and `ota-server backup` name the store: a directory or s3://bucket/prefix. */
  readonly location: string;
  readonly kind: 'local' | 's3';
  /** Starts a new upload. */
  createUpload(): Promise<BundleUpload>;
  /** Bytes [start, end] (inclusive) of a stored bundle; BUNDLE_NOT_FOUND if it is missing. */
  read(sha256: string, start: number, end: number): Promise<BundleStream>;
  /** Removes a stored bundle (whose release could not be recorded). */
  remove(sha256: string): Promise<void>;
  /** Deletes stored bundles that `keep` does not name; returns what was removed. */
  sweep(keep: ReadonlySet<string>): Promise<string[]>;
  /** A URL a device may download the bundle from directly, per the download mode; null: through the server. */
  directUrl(sha256: string): Promise<DirectUrl>;
  /** Releases connections (the object store's); the store is not used afterwards. */
  close(): void;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** A temporary file being written. */
export interface TempFile {
  path: string;
  handle: FileHandle;
}

/** The bundles/ and tmp/ directories of a data directory. */
export class BundleStore implements BundleStorage {
  readonly kind = 'local';
  readonly bundlesDir: string;
  readonly tmpDir: string;
  /** `bundlePublicUrl`: a static origin or CDN serving bundles/ (its files named by sha256), or null. */
  publicUrl: string | null = null;

  private constructor(dataDir: string) {
    this.bundlesDir = join(dataDir, 'bundles');
    this.tmpDir = join(dataDir, 'tmp');
  }

  get location(): string {
    return this.bundlesDir;
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

  async createUpload(): Promise<BundleUpload> {
    return new LocalUpload(this, await this.createTemp());
  }

  async read(sha256: string, start: number, end: number): Promise<BundleStream> {
    let fh;
    try {
      fh = await open(this.path(sha256), 'r');
    } catch (cause) {
      throw new OtaError('BUNDLE_NOT_FOUND', `bundle ${sha256}: recorded but missing from storage`, { cause });
    }
    return fh.createReadStream({ start, end, highWaterMark: CHUNK });
  }

  async directUrl(sha256: string): Promise<DirectUrl> {
    return this.publicUrl === null ? null : `${this.publicUrl}/${this.path(sha256).slice(this.bundlesDir.length + 1)}`;
  }

  close(): void {
    // Nothing held open between requests.
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

/** An upload into tmp/, renamed to bundles/<sha256> by `commit`. */
class LocalUpload implements BundleUpload {
  /** Writes to the new, empty temporary file in batches, one in flight (shared/write-behind.ts). */
  private readonly out: WriteBehind;
  private closed = false;

  constructor(
    private readonly store: BundleStore,
    private readonly file: TempFile,
  ) {
    this.out = new WriteBehind(file.handle, 0);
  }

  write(chunk: Buffer): Promise<void> {
    return this.out.add(chunk);
  }

  async finish(): Promise<void> {
    await this.out.drain();
    await this.file.handle.sync();
    await this.file.handle.close();
    this.closed = true;
  }

  commit(sha256: string): Promise<void> {
    return this.store.commit(this.file.path, sha256);
  }

  async discard(): Promise<void> {
    await this.out.abandon().catch(() => undefined);
    if (!this.closed) {
      this.closed = true;
      await this.file.handle.close().catch(() => undefined);
    }
    await this.store.discard(this.file.path);
  }
}
