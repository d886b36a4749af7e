/**
 * The streaming bundle reader (DESIGN §3). `BundleReader.open` reads manifest.json and its
 * signature and verifies them; only then can `payloads()` be iterated, and each payload's
 * bytes are hashed and counted as they pass, failing the stream on any mismatch.
 * Nothing here buffers a payload: memory stays flat whatever the bundle size.
 */
import { createHash } from 'node:crypto';
import { ByteSource } from './byte-source.js';
import { OtaError } from './errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type Manifest, type ModuleSpec } from './manifest.js';
import { verifyDetached, type Keyring, type SignerInfo } from './signing.js';
import { TarReader, collect, padded, type TarHeader } from './tar-reader.js';

const MAX_SIGNATURE_BYTES = 64 * 1024;
const brand = Symbol('verified');
/**
 * The verifier's proof, held by this module only: VerifiedBundle's constructor demands it, and no
 * other module can name or produce a value of its type (a `unique symbol`), so only the reader
 * below, after the signature has verified, can make a VerifiedBundle.
 */
const VERIFIER: unique symbol = Symbol('bundle verifier');

/**
 * A manifest whose signature verified against a trusted key. Only this module can make one,
 * so code that takes a VerifiedBundle cannot be handed an unchecked manifest
 * (test/shared/verified-bundle.test.ts checks that the type system says so).
 */
export class VerifiedBundle {
  readonly [brand] = true;
  constructor(
    proof: typeof VERIFIER,
    readonly manifest: Manifest,
    readonly manifestBytes: Buffer,
    readonly signature: Buffer,
    readonly signer: SignerInfo,
    /** Offset of the first payload header in the bundle. */
    readonly payloadsOffset: number,
  ) {
    if (proof !== VERIFIER) throw new Error('only the bundle verifier (shared/bundle-reader.ts) makes a VerifiedBundle');
  }
}

/** Options for opening a bundle. */
export interface OpenOptions {
  keyring: Keyring;
  /** What to call the input in error messages (a path or URL). */
  source?: string;
  /** Time at which keys must be valid (default: now). */
  now?: Date;
}

/** Where an interrupted bundle read can continue: inside payload `index`, `offset` bytes in. */
export interface ResumePoint {
  index: number;
  /** Offset of that payload's first byte in the bundle (PayloadEntry.dataOffset). */
  dataOffset: number;
  offset: number;
}

/** One payload as it streams out of the bundle. */
export interface PayloadEntry {
  readonly module: ModuleSpec;
  readonly index: number;
  /** Offset of the payload's first byte in the bundle: with a byte count, a durable resume point. */
  readonly dataOffset: number;
  /** Bytes of this payload already consumed before this reader started (resume), else 0. */
  readonly startOffset: number;
  /** The payload's bytes, hashed and counted while they pass; the iteration throws on mismatch at the end. */
  readonly chunks: AsyncIterable<Buffer>;
  /**
   * Hands the check of the payload's signed sha256 to the caller, before the first chunk is
   * read: the reader then neither hashes the bytes (nor a resumed payload's prefix) nor throws
   * PAYLOAD_HASH_MISMATCH, and the caller must compare what it wrote with `module.sha256` before
   * anything uses it. A raw slot does: it reads the whole slot back and hashes it anyway
   * (agent/boot/slots/raw.ts), so hashing the stream as well was a second SHA-256 of every byte.
   */
  deferHashCheck(): void;
}

function checkName(name: string, what: string): string {
  if (name.includes('\0')) throw new OtaError('ENTRY_BAD_NAME', `${what}: entry name contains a NUL byte`);
  const n = name.startsWith('./') ? name.slice(2) : name;
  if (n.startsWith('/')) throw new OtaError('ENTRY_BAD_NAME', `${what}: entry "${name}" is an absolute path`);
  if (n.split('/').includes('..')) throw new OtaError('ENTRY_BAD_NAME', `${what}: entry "${name}" contains ".."`);
  return n;
}

function checkRegular(h: TarHeader, what: string): void {
  if (h.type !== '0' && h.type !== '7') {
    throw new OtaError('ENTRY_BAD_TYPE', `${what}: entry "${h.name}" is not a regular file (tar type "${h.type}")`);
  }
}

/** Reads and verifies one bundle from a byte stream. */
export class BundleReader {
  private consumedAll = false;
  private readonly indexBytes = new Map<string, Buffer>();
  private indexesRead = false;

  private constructor(
    private readonly src: ByteSource,
    private readonly tar: TarReader,
    readonly bundle: VerifiedBundle,
    private readonly what: string,
    private readonly resumeState?: { at: ResumePoint; prefix: AsyncIterable<Buffer> },
  ) {}

  /**
   * Continues a bundle part-way through payload `at.index`: `input` must deliver the bundle from
   * byte `at.dataOffset + at.offset` on (an HTTP Range request), and `prefix` the payload's first
   * `at.offset` bytes (read back from the slot) so its hash still covers every byte. The
   * signature is verified again from the stored manifest and signature bytes.
   */
  static async resume(
    input: AsyncIterable<Uint8Array>,
    opts: OpenOptions,
    signed: { manifestBytes: Buffer; signature: Buffer; payloadsOffset: number },
    at: ResumePoint,
    prefix: AsyncIterable<Buffer>,
  ): Promise<BundleReader> {
    const what = `bundle ${opts.source ?? ''}`.trim();
    const signer = await verifyDetached(signed.manifestBytes, signed.signature, opts.keyring, `${what}: manifest.json.sig`, opts.now);
    const manifest = parseManifest(signed.manifestBytes);
    const module = manifest.modules[at.index];
    if (!module || at.offset < 0 || at.offset > module.size || at.dataOffset < signed.payloadsOffset) {
      throw new OtaError('BUNDLE_TRUNCATED', `${what}: resume point (payload ${at.index}, offset ${at.offset}) does not lie inside the bundle`);
    }
    const bundle = new VerifiedBundle(VERIFIER, manifest, signed.manifestBytes, signed.signature, signer, signed.payloadsOffset);
    const src = new ByteSource(input, at.dataOffset + at.offset);
    return new BundleReader(src, new TarReader(src, what), bundle, what, { at, prefix });
  }

  /** Reads manifest.json and manifest.json.sig and verifies the signature; no payload byte is read yet. */
  static async open(input: AsyncIterable<Uint8Array>, opts: OpenOptions): Promise<BundleReader> {
    const what = `bundle ${opts.source ?? ''}`.trim();
    const src = new ByteSource(input);
    const tar = new TarReader(src, what);

    const mh = await tar.next();
    if (!mh) throw new OtaError('MANIFEST_MISSING', `${what}: the archive has no entries`);
    const mname = checkName(mh.name, what);
    if (mname !== 'manifest.json') throw new OtaError('MANIFEST_MISSING', `${what}: the first entry is "${mh.name}", not manifest.json`);
    checkRegular(mh, what);
    if (mh.size > MAX_MANIFEST_BYTES) {
      throw new OtaError('MANIFEST_TOO_LARGE', `${what}: manifest.json is ${mh.size} bytes; the limit is ${MAX_MANIFEST_BYTES}`);
    }
    const manifestBytes = Buffer.concat(await collect(src.take(mh.size, `${what}: manifest.json`)));
    await src.skip(padded(mh.size) - mh.size, what);

    const sh = await tar.next();
    if (!sh) throw new OtaError('SIGNATURE_MISSING', `${what}: the archive ends after manifest.json; manifest.json.sig is missing`);
    const sname = checkName(sh.name, what);
    if (sname !== 'manifest.json.sig') {
      throw new OtaError('SIGNATURE_MISSING', `${what}: the second entry is "${sh.name}", not manifest.json.sig`);
    }
    checkRegular(sh, what);
    if (sh.size > MAX_SIGNATURE_BYTES) throw new OtaError('SIGNATURE_MALFORMED', `${what}: manifest.json.sig is ${sh.size} bytes`);
    const signature = Buffer.concat(await collect(src.take(sh.size, `${what}: manifest.json.sig`)));
    await src.skip(padded(sh.size) - sh.size, what);

    // Signature first: nothing in an unauthenticated manifest is interpreted, not even its schema.
    const signer = await verifyDetached(manifestBytes, signature, opts.keyring, `${what}: manifest.json.sig`, opts.now);
    let manifest: Manifest;
    try {
      manifest = parseManifest(manifestBytes);
    } catch (err) {
      if (err instanceof OtaError) throw new OtaError(err.code, `${what}: ${err.message}`, { cause: err });
      throw err;
    }
    const bundle = new VerifiedBundle(VERIFIER, manifest, manifestBytes, signature, signer, src.position);
    return new BundleReader(src, tar, bundle, what);
  }

  /** The verified manifest. */
  get manifest(): Manifest {
    return this.bundle.manifest;
  }

  /**
   * Yields each payload in manifest order. A payload the caller does not read is drained (and
   * still verified) before the next header. Ends only after the end-of-archive marker and
   * trailing-data checks, so a completed iteration means the whole bundle was authentic.
   */
  async *payloads(): AsyncGenerator<PayloadEntry> {
    const modules = this.manifest.modules;
    const byName = new Map(modules.map((m, i) => [m.name, i]));
    const seen = new Set<string>();
    let expected = 0;
    await this.indexes();
    if (this.resumeState) {
      const { at, prefix } = this.resumeState;
      for (const m of modules.slice(0, at.index + 1)) seen.add(m.name);
      expected = at.index + 1;
      const module = modules[at.index]!;
      const header: TarHeader = { name: `payloads/${module.name}`, size: module.size, type: '0', dataOffset: at.dataOffset };
      const body = new PayloadBody(this.src, module, header, this.what, { offset: at.offset, prefix });
      yield { module, index: at.index, dataOffset: at.dataOffset, startOffset: at.offset, chunks: body, deferHashCheck: () => body.deferHashCheck() };
      if (!body.finished) await body.drain();
    }
    for (;;) {
      const h = await this.tar.next();
      if (!h) break;
      const name = checkName(h.name, this.what);
      if (name === 'manifest.json' || name === 'manifest.json.sig') {
        throw new OtaError('ENTRY_DUPLICATE', `${this.what}: ${name} appears a second time`);
      }
      if (!name.startsWith('payloads/') || name.length === 'payloads/'.length || name.slice(9).includes('/')) {
        throw new OtaError('ENTRY_BAD_NAME', `${this.what}: entry "${h.name}" is not payloads/<name>`);
      }
      checkRegular(h, this.what);
      const pname = name.slice(9);
      const index = byName.get(pname);
      if (index === undefined) throw new OtaError('ENTRY_UNDECLARED', `${this.what}: entry "${name}" is not declared in the manifest`);
      if (seen.has(pname)) throw new OtaError('ENTRY_DUPLICATE', `${this.what}: entry "${name}" appears twice`);
      if (index !== expected) {
        throw new OtaError('ENTRY_ORDER', `${this.what}: entry "${name}" comes where "payloads/${modules[expected]?.name}" was expected`);
      }
      seen.add(pname);
      expected++;
      const module = modules[index]!;
      if (h.size !== module.size) {
        throw new OtaError('PAYLOAD_SIZE_MISMATCH', `${this.what}: payload "${pname}" is ${h.size} bytes in the archive but ${module.size} in the manifest`);
      }
      const body = new PayloadBody(this.src, module, h, this.what);
      yield { module, index, dataOffset: h.dataOffset, startOffset: 0, chunks: body, deferHashCheck: () => body.deferHashCheck() };
      if (!body.finished) await body.drain();
    }
    if (expected < modules.length) {
      throw new OtaError('ENTRY_MISSING', `${this.what}: payload "${modules[expected]!.name}" is declared but absent`);
    }
    this.consumedAll = true;
  }

  /**
   * The `index/<name>` entries (format 2) that follow the signature, each checked against the
   * size and sha256 the manifest signed, by module name. Read before the first payload; a
   * resumed reader starts past them and has none.
   */
  async indexes(): Promise<ReadonlyMap<string, Buffer>> {
    if (this.indexesRead || this.resumeState) return this.indexBytes;
    for (const m of this.manifest.modules) {
      if (!m.index) continue;
      const want = `index/${m.name}`;
      const h = await this.tar.next();
      if (!h) throw new OtaError('ENTRY_MISSING', `${this.what}: the archive ends where ${want} was expected`);
      const name = checkName(h.name, this.what);
      if (name !== want) throw new OtaError('ENTRY_ORDER', `${this.what}: entry "${name}" comes where "${want}" was expected`);
      checkRegular(h, this.what);
      if (h.size !== m.index.size) {
        throw new OtaError('INDEX_HASH_MISMATCH', `${this.what}: ${want} is ${h.size} bytes in the archive but ${m.index.size} in the manifest`);
      }
      const bytes = Buffer.concat(await collect(this.src.take(h.size, `${this.what}: ${want}`)));
      await this.src.skip(padded(h.size) - h.size, this.what);
      const digest = createHash('sha256').update(bytes).digest('hex');
      if (digest !== m.index.sha256) {
        throw new OtaError('INDEX_HASH_MISMATCH', `${this.what}: ${want} has sha256 ${digest}, the manifest signed ${m.index.sha256}`);
      }
      this.indexBytes.set(m.name, bytes);
    }
    this.indexesRead = true;
    return this.indexBytes;
  }

  /** True once `payloads()` ran to the verified end of the archive. */
  get complete(): boolean {
    return this.consumedAll;
  }
}

/** The performance mark of the process's first payload byte (`npm run bench` reads it at exit: start-up time). */
export const FIRST_PAYLOAD_BYTE = 'otaab:first-payload-byte';
let marked = false;
function markFirstPayloadByte(): void {
  if (marked) return;
  marked = true;
  performance.mark(FIRST_PAYLOAD_BYTE);
}

class PayloadBody implements AsyncIterable<Buffer> {
  finished = false;
  private started = false;
  /** False once the caller took over the check of the signed sha256 (PayloadEntry.deferHashCheck). */
  private hashing = true;

  constructor(
    private readonly src: ByteSource,
    private readonly module: ModuleSpec,
    private readonly header: TarHeader,
    private readonly what: string,
    private readonly resumed?: { offset: number; prefix: AsyncIterable<Buffer> },
  ) {}

  deferHashCheck(): void {
    if (this.started) throw new Error(`payload "${this.module.name}": its hash check can be handed over only before it is read`);
    this.hashing = false;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    if (this.started) throw new Error(`payload "${this.module.name}" can be read only once`);
    this.started = true;
    if (!this.hashing) {
      // The caller compares what it wrote with the signed sha256 (deferHashCheck): only count.
      for await (const chunk of this.src.take(this.header.size - (this.resumed?.offset ?? 0), `${this.what}: payload "${this.module.name}"`)) {
        markFirstPayloadByte();
        yield chunk;
      }
      await this.src.skip(padded(this.header.size) - this.header.size, this.what);
      this.finished = true;
      return;
    }
    const hash = createHash('sha256');
    let skip = 0;
    if (this.resumed) {
      for await (const c of this.resumed.prefix) {
        hash.update(c);
        skip += c.length;
      }
      if (skip !== this.resumed.offset) {
        throw new OtaError('PAYLOAD_SIZE_MISMATCH', `${this.what}: payload "${this.module.name}": ${skip} bytes read back to resume, ${this.resumed.offset} expected`);
      }
    }
    for await (const chunk of this.src.take(this.header.size - skip, `${this.what}: payload "${this.module.name}"`)) {
      markFirstPayloadByte();
      hash.update(chunk);
      yield chunk;
    }
    await this.src.skip(padded(this.header.size) - this.header.size, this.what);
    const digest = hash.digest('hex');
    this.finished = true;
    if (digest !== this.module.sha256) {
      throw new OtaError('PAYLOAD_HASH_MISMATCH', `${this.what}: payload "${this.module.name}" has sha256 ${digest}, the manifest signed ${this.module.sha256}`);
    }
  }

  async drain(): Promise<void> {
    if (this.started) throw new Error(`payload "${this.module.name}" was abandoned part-way`);
    for await (const _ of this) {
      // verify while skipping
    }
  }
}
