/**
 * Bundles in S3-compatible object storage (AWS S3, MinIO, Garage, ...) through the official
 * AWS SDK v3. Keys: `<prefix>bundles/<sha256>` for complete, verified bundles and
 * `<prefix>uploads/<random>` for an upload whose sha256 is not known yet.
 *
 * An upload is streamed: chunks gather into parts of `partSize` bytes and each full part is
 * sent as an UploadPart of one multipart upload while the next one gathers (one part in
 * flight, so at most two parts are in memory, never the bundle, never a temporary file). A
 * bundle smaller than one part is never sent before it is verified: `commit` puts it straight
 * under its sha256. A rejected upload is aborted (AbortMultipartUpload), so the bucket keeps
 * nothing of it; a verified one is completed under uploads/, copied server-side to its
 * sha256 key and the staging object deleted.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomBytes } from 'node:crypto';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { OtaError, errorMessage } from '../../shared/errors.js';
import type { BundleStorage, BundleStream, BundleUpload } from './bundle-store.js';

const SHA256 = /^[0-9a-f]{64}$/;

/** The smallest part S3 accepts (but the last); parts grow with the largest bundle accepted. */
export const MIN_PART = 8 * 1024 * 1024;
/** S3's limit on parts per multipart upload. */
const MAX_PARTS = 10_000;
/** CopyObject copies at most 5 GiB; larger objects are copied part by part. */
const COPY_LIMIT = 5 * 1024 ** 3;
const COPY_PART = 1024 ** 3;
/** Unrecorded bundles and staging objects younger than this are left to the upload that may own them. */
export const SWEEP_GRACE_MS = 60 * 60 * 1000;

/** What the server config says about the store. */
export interface S3Options {
  /** null: AWS's own endpoint for the region. */
  endpoint: string | null;
  region: string;
  bucket: string;
  /** Prepended to every key; '' or ending in '/'. */
  prefix: string;
  /** Path-style addressing (endpoint/bucket/key), what MinIO and Garage expect without DNS setup. */
  pathStyle: boolean;
  /** null: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, ~/.aws, instance roles). */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
  /** 'presigned': devices get short-lived presigned URLs; 'public': `publicUrl/<sha256>`; 'server': none. */
  download: 'server' | 'presigned' | 'public';
  presignTtl: number;
  publicUrl: string | null;
  /** The largest bundle accepted: parts grow so it fits in 10,000. */
  maxBundleSize: number;
}

function storageError(what: string, cause: unknown): OtaError {
  return new OtaError('STORAGE_UNAVAILABLE', `object store: ${what} failed (${errorMessage(cause)})`, { cause });
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** See the module comment. */
export class S3BundleStore implements BundleStorage {
  readonly kind = 's3';
  readonly client: S3Client;
  readonly partSize: number;

  private constructor(readonly opts: S3Options) {
    // This SDK version supports Node 20 (its engines field says >=20); later ones will not, so
    // package.json pins it. Its notice about that is not the operator's concern at every start.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.pathStyle,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Only the checksums S3 requires: several S3-compatible stores refuse the optional
      // trailing CRC32 of aws-chunked uploads. Bundles carry their own signed hashes.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
    this.partSize = Math.max(MIN_PART, Math.ceil(opts.maxBundleSize / MAX_PARTS));
  }

  /** Opens the store and checks the bucket answers (listing one key of the prefix). */
  static async open(opts: S3Options): Promise<S3BundleStore> {
    const s = new S3BundleStore(opts);
    try {
      await s.client.send(new ListObjectsV2Command({ Bucket: opts.bucket, Prefix: opts.prefix, MaxKeys: 1 }));
    } catch (cause) {
      s.client.destroy();
      throw new OtaError('SERVER_STORAGE_UNUSABLE', `object store ${s.location}${opts.endpoint ? ` at ${opts.endpoint}` : ''}: cannot list the bucket (${errorMessage(cause)})`, { cause });
    }
    return s;
  }

  close(): void {
    this.client.destroy();
  }

  get location(): string {
    return `s3://${this.opts.bucket}/${this.opts.prefix}`;
  }

  /** The key of a stored bundle. */
  key(sha256: string): string {
    if (!SHA256.test(sha256)) throw new TypeError(`not a sha256: ${sha256}`);
    return `${this.opts.prefix}bundles/${sha256}`;
  }

  get uploadsPrefix(): string {
    return `${this.opts.prefix}uploads/`;
  }

  async createUpload(): Promise<BundleUpload> {
    return new S3Upload(this, `${this.uploadsPrefix}${Date.now()}-${randomBytes(8).toString('hex')}`);
  }

  async read(sha256: string, start: number, end: number): Promise<BundleStream> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(sha256), Range: `bytes=${start}-${end}` }));
      const body = r.Body;
      if (!(body instanceof Readable)) throw new Error('the answer has no body stream');
      const counted = new Counted();
      // A failure of the object store's stream ends the answer early (the device resumes);
      // a device hanging up destroys the GET.
      pipeline(body, counted, () => undefined);
      return counted;
    } catch (cause) {
      if (isMissing(cause)) throw new OtaError('BUNDLE_NOT_FOUND', `bundle ${sha256}: recorded but missing from ${this.location}`, { cause });
      throw storageError(`GET ${this.key(sha256)} bytes ${start}-${end}`, cause);
    }
  }

  /** The size of a stored bundle, or null when it is not there. */
  async head(sha256: string): Promise<number | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.key(sha256) }));
      return r.ContentLength ?? null;
    } catch (cause) {
      if (isMissing(cause)) return null;
      throw storageError(`HEAD ${this.key(sha256)}`, cause);
    }
  }

  async directUrl(sha256: string): Promise<string | null> {
    const o = this.opts;
    if (o.download === 'public') return `${o.publicUrl}/${sha256}`;
    if (o.download === 'presigned') {
      try {
        return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: o.bucket, Key: this.key(sha256) }), { expiresIn: o.presignTtl });
      } catch (cause) {
        throw storageError(`presigning ${this.key(sha256)}`, cause);
      }
    }
    return null;
  }

  async remove(sha256: string): Promise<void> {
    await this.deleteKey(this.key(sha256));
  }

  async deleteKey(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }));
    } catch (cause) {
      if (!isMissing(cause)) throw storageError(`DELETE ${key}`, cause);
    }
  }

  /**
   * Deletes bundles no release records and staging objects left by interrupted uploads, both
   * only when older than SWEEP_GRACE_MS: another server instance on the same bucket may be
   * between storing a bundle and recording it. Incomplete multipart uploads are the bucket's
   * lifecycle rule's job (docs/STORAGE.md): not every S3-compatible store lists them.
   */
  async sweep(keep: ReadonlySet<string>, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const bundles = `${this.opts.prefix}bundles/`;
    for (const prefix of [bundles, this.uploadsPrefix]) {
      let token: string | undefined;
      do {
        let page;
        try {
          page = await this.client.send(new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: prefix, ContinuationToken: token }));
        } catch (cause) {
          throw storageError(`listing ${prefix}`, cause);
        }
        for (const o of page.Contents ?? []) {
          if (!o.Key) continue;
          const name = o.Key.slice(prefix.length);
          if (prefix === bundles && keep.has(name)) continue;
          if (o.LastModified && now - o.LastModified.getTime() < SWEEP_GRACE_MS) continue;
          await this.deleteKey(o.Key);
          removed.push(prefix === bundles ? name : o.Key);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    }
    return removed;
  }

  /** Copies `from` to the bundle key of `sha256` inside the bucket (no byte through the server). */
  async copy(from: string, sha256: string, size: number): Promise<void> {
    const { bucket } = this.opts;
    const to = this.key(sha256);
    const source = `${bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    if (size <= COPY_LIMIT) {
      await this.client.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source }));
      return;
    }
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, ContentType: 'application/octet-stream' }));
    try {
      const parts: CompletedPart[] = [];
      for (let at = 0, n = 1; at < size; at += COPY_PART, n++) {
        const r = await this.client.send(
          new UploadPartCopyCommand({ Bucket: bucket, Key: to, UploadId, PartNumber: n, CopySource: source, CopySourceRange: `bytes=${at}-${Math.min(size, at + COPY_PART) - 1}` }),
        );
        parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId })).catch(() => undefined);
      throw err;
    }
  }
}

/** Passes bytes through, counting them like a file stream's bytesRead. */
class Counted extends Transform {
  bytesRead = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytesRead += chunk.length;
    done(null, chunk);
  }
}

/** A part's upload, its failure held until the upload is next awaited. */
type Pending = Promise<{ error: unknown } | undefined>;

/** See the module comment. */
class S3Upload implements BundleUpload {
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private size = 0;
  private uploadId: string | undefined;
  private readonly parts: CompletedPart[] = [];
  private inFlight: Pending | undefined;
  /** The staging object exists (the multipart upload was completed). */
  private completed = false;
  /** Less than one part in all: kept for `commit` to put under its sha256 once verified. */
  private small: Buffer | undefined;
  private done = false;

  constructor(
    private readonly store: S3BundleStore,
    readonly key: string,
  ) {}

  private get bucket(): string {
    return this.store.opts.bucket;
  }

  async write(chunk: Buffer): Promise<void> {
    this.gathered.push(chunk);
    this.gatheredBytes += chunk.length;
    this.size += chunk.length;
    if (this.gatheredBytes >= this.store.partSize) await this.sendGathered();
  }

  /** Waits for the part in flight (throwing its failure), then starts sending what is gathered. */
  private async sendGathered(): Promise<void> {
    await this.settle();
    if (this.gatheredBytes === 0) return;
    const body = Buffer.concat(this.gathered, this.gatheredBytes);
    this.gathered = [];
    this.gatheredBytes = 0;
    if (this.uploadId === undefined) {
      try {
        const r = await this.store.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, ContentType: 'application/octet-stream' }));
        this.uploadId = r.UploadId;
      } catch (cause) {
        throw storageError(`starting a multipart upload of ${this.key}`, cause);
      }
      if (!this.uploadId) throw storageError(`starting a multipart upload of ${this.key}`, new Error('no UploadId in the answer'));
    }
    const n = this.parts.length + 1;
    const part: CompletedPart = { PartNumber: n };
    this.parts.push(part);
    this.inFlight = this.store.client
      .send(new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: n, Body: body, ContentLength: body.length }))
      .then(
        (r) => {
          part.ETag = r.ETag;
          return undefined;
        },
        (cause: unknown) => ({ error: storageError(`part ${n} of ${this.key}`, cause) }),
      );
  }

  private async settle(): Promise<void> {
    const f = this.inFlight;
    this.inFlight = undefined;
    const failure = await f;
    if (failure) throw failure.error;
  }

  async finish(): Promise<void> {
    if (this.uploadId === undefined) {
      // Never sent: one PutObject under the sha256 at commit, nothing in the bucket before.
      this.small = Buffer.concat(this.gathered, this.gatheredBytes);
      this.gathered = [];
      this.gatheredBytes = 0;
      return;
    }
    await this.sendGathered();
    await this.settle();
    try {
      await this.store.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, MultipartUpload: { Parts: this.parts } }),
      );
    } catch (cause) {
      throw storageError(`completing the multipart upload of ${this.key}`, cause);
    }
    this.completed = true;
  }

  async commit(sha256: string): Promise<void> {
    const key = this.store.key(sha256);
    if (this.small) {
      try {
        await this.store.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: this.small, ContentLength: this.small.length, ContentType: 'application/octet-stream' }));
      } catch (cause) {
        throw storageError(`PUT ${key}`, cause);
      }
      this.small = undefined;
      this.done = true;
      return;
    }
    try {
      await this.store.copy(this.key, sha256, this.size);
    } catch (cause) {
      throw storageError(`copying ${this.key} to ${key}`, cause);
    }
    this.done = true;
    await this.store.deleteKey(this.key).catch(() => undefined);
    this.completed = false;
  }

  /** Leaves nothing of this upload in the bucket: aborts the multipart upload or deletes the staging object. */
  async discard(): Promise<void> {
    this.gathered = [];
    this.small = undefined;
    await this.inFlight;
    this.inFlight = undefined;
    if (this.completed) {
      this.completed = false;
      await this.store.deleteKey(this.key);
    } else if (this.uploadId !== undefined && !this.done) {
      const id = this.uploadId;
      this.uploadId = undefined;
      try {
        await this.store.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: id }));
      } catch (cause) {
        throw storageError(`aborting the multipart upload of ${this.key}`, cause);
      }
    }
  }
}
