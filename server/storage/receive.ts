/**
 * Receives an uploaded bundle in one pass: every chunk of the request body is counted against
 * the size cap, hashed, written to the bundle store's upload (a temporary file, or an object
 * store's multipart upload) and handed to the same streaming verifier the agent uses. Only when
 * verification reached the end of the archive is the upload finished (fsynced, or its last
 * part sent) and returned; on any failure the upload is discarded (the file removed, the
 * multipart upload aborted) before the error is thrown.
 */
import { createHash } from 'node:crypto';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import type { Keyring } from '../../shared/signing.js';
import { verifyBundleStream, type VerifyReport } from '../../shared/verify.js';
import type { BundleStorage, BundleUpload } from './bundle-store.js';

/** A verified bundle waiting in the store's staging area to be committed (or discarded). */
export interface ReceivedBundle {
  upload: BundleUpload;
  sha256: string;
  size: number;
  report: VerifyReport;
}

/** What `receiveBundle` needs. */
export interface ReceiveOptions {
  store: BundleStorage;
  keyring: Keyring;
  maxSize: number;
  /** How errors name the upload. */
  source: string;
}

/** Pulls the body once; `chunks()` writes and hashes what it yields, `discard()` drops the rest. */
class Tee {
  private readonly it: AsyncIterator<Uint8Array>;
  private readonly hash = createHash('sha256');
  size = 0;
  ended = false;

  constructor(
    body: AsyncIterable<Uint8Array>,
    /** Takes the chunks in order; waits only when the store is behind. */
    readonly out: BundleUpload,
    private readonly opts: ReceiveOptions,
  ) {
    this.it = body[Symbol.asyncIterator]();
  }

  private async pull(): Promise<Buffer | null> {
    let r: IteratorResult<Uint8Array>;
    try {
      r = await this.it.next();
    } catch (cause) {
      this.ended = true;
      throw new OtaError('UPLOAD_ABORTED', `${this.opts.source}: the upload stopped after ${this.size} bytes (${errorMessage(cause)})`, { cause });
    }
    if (r.done) {
      this.ended = true;
      return null;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.size += chunk.length;
    if (this.size > this.opts.maxSize) {
      throw new OtaError('UPLOAD_TOO_LARGE', `${this.opts.source}: more than ${this.opts.maxSize} bytes (the server's maxBundleSize)`);
    }
    return chunk;
  }

  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      const chunk = await this.pull();
      if (chunk === null) return;
      this.hash.update(chunk);
      // Hashed as handed to the writer, which writes every byte (short writes go on) in order.
      await this.out.write(chunk);
      yield chunk;
    }
  }

  /**
   * Reads and drops the rest of the body, so the client, still sending, gets to read our
   * answer instead of a reset connection. Stops at the size cap (then the answer goes out
   * with the connection closed).
   */
  async discard(): Promise<void> {
    while (!this.ended && this.size <= this.opts.maxSize) await this.pull();
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Receives, stages and verifies one bundle; throws the verifier's OtaError on a bad one. */
export async function receiveBundle(body: AsyncIterable<Uint8Array>, opts: ReceiveOptions): Promise<ReceivedBundle> {
  const upload = await opts.store.createUpload();
  const tee = new Tee(body, upload, opts);
  try {
    const report = await verifyBundleStream(tee.chunks(), opts.keyring, opts.source);
    // The verifier reads to the end of input to check trailing bytes; make sure nothing is left.
    if (!tee.ended && (await tee.chunks().next()).done !== true) {
      throw new OtaError('BUNDLE_TRAILING_DATA', `${opts.source}: bytes follow the end of the archive`);
    }
    await upload.finish();
    return { upload, sha256: tee.digest(), size: tee.size, report };
  } catch (err) {
    await upload.discard().catch(() => undefined);
    if (!isOtaError(err, 'UPLOAD_TOO_LARGE')) await tee.discard().catch(() => undefined);
    throw err;
  }
}
