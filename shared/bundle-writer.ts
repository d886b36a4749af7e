/**
 * Builds a signed bundle (DESIGN §3). Each payload is first staged: hashed in place (an image
 * file or a ready tar), or compressed / packed into a temporary file while hashing (gzip image,
 * directory tree). Then the manifest is signed and the tar is streamed out to a temporary file,
 * fsynced and renamed into place, so a crash never leaves a half bundle under the final name.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { PrivateKey } from 'openpgp';
import { OtaError, errorMessage } from './errors.js';
import { fsyncPath } from './fsync.js';
import { indexRawImage, stageChunkedGzip, type ChunkBuildOptions } from './chunk-build.js';
import { packIndex } from './chunk-index.js';
import { CHUNK, forEachChunk, hashFile, sha256Hex } from './hashing.js';
import { isPayloadName, serializeManifest, validateManifest, type Manifest, type ModuleSpec, type ModuleType } from './manifest.js';
import { signDetached } from './signing.js';
import { END_OF_ARCHIVE, entryHeader, pad, padding } from './tar-writer.js';
import { packTree } from './tree-pack.js';
import { walkTree } from './tree.js';
import { writeAll } from './write-behind.js';
import { isoTime } from './iso-time.js';

/** One payload to put into a bundle. */
export interface PayloadInput {
  name: string;
  type: ModuleType;
  /** An image file; or, for archive/module, a directory or a tar file. */
  path: string;
  /** Compress an image with gzip while building. */
  gzip?: boolean;
  /** Module target inside the slot, e.g. /opt/modules/linky2influx. */
  target?: string;
  /** Module version. */
  version?: string;
}

/** Whether images get a chunk index (format 2, docs/DELTA.md), and how they are chunked. */
export type IndexOption = false | ChunkBuildOptions;

/** Everything `buildBundle` needs. */
export interface BuildInput {
  product: string;
  version: string;
  compatible: string[];
  notes?: string;
  created?: Date;
  payloads: PayloadInput[];
  key: PrivateKey;
  out: string;
  /** Chunk index for every image (delta updates); none when absent or false. */
  index?: IndexOption;
  /** Called as payload bytes are written: (bytes written, total payload bytes). */
  onProgress?: (done: number, total: number) => void;
}

/** What was built. */
export interface BuildResult {
  manifest: Manifest;
  size: number;
  sha256: string;
}

interface Staged {
  spec: ModuleSpec;
  file: string;
  /** The packed `index/<name>` entry. */
  index?: Buffer;
}

async function stageGzip(path: string, out: string): Promise<{ sha256: string; size: number; unpackedSize: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const gz = createGzip({ level: 6 });
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const writing = pipeline(gz, tap, createWriteStream(out));
  // zlib keeps a reference to each input chunk until it has compressed it; waiting for the
  // write callback lets forEachChunk reuse its buffers safely.
  const unpackedSize = await forEachChunk(path, (chunk) => new Promise<void>((resolve, reject) => gz.write(chunk, (err) => (err ? reject(err) : resolve()))));
  gz.end();
  await writing;
  return { sha256: hash.digest('hex'), size, unpackedSize };
}

async function stage(p: PayloadInput, tmp: string, k: number, indexing: IndexOption = false): Promise<Staged> {
  if (!isPayloadName(p.name)) {
    throw new OtaError('MANIFEST_FIELD_VALUE', `payload name "${p.name}" must be 1-64 letters, digits, ".", "_" or "-"`);
  }
  let st;
  try {
    st = await stat(p.path);
  } catch (cause) {
    throw new OtaError('PAYLOAD_SOURCE_UNREADABLE', `payload ${p.name}: ${p.path} cannot be read (${(cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : errorMessage(cause)})`, { cause });
  }
  const base: Pick<ModuleSpec, 'name' | 'type'> = { name: p.name, type: p.type };
  const extra: Partial<ModuleSpec> = {};
  if (p.target !== undefined) extra.target = p.target;
  if (p.version !== undefined) extra.version = p.version;
  if (p.type === 'image') {
    if (!st.isFile()) throw new OtaError('MANIFEST_FIELD_VALUE', `payload ${p.name}: an image must be a file, ${p.path} is not`);
    if (indexing !== false) {
      const file = p.gzip ? join(tmp, `${k}.gz`) : p.path;
      const c = p.gzip ? await stageChunkedGzip(p.path, file, indexing) : await indexRawImage(p.path, indexing);
      const index = packIndex(c.index);
      const spec: ModuleSpec = { ...base, sha256: c.sha256, size: c.size, compression: p.gzip ? 'gzip' : 'none', index: { sha256: sha256Hex(index), size: index.length } };
      if (p.gzip) spec.unpackedSize = c.index.imageSize;
      return { file, spec, index };
    }
    if (p.gzip) {
      const file = join(tmp, `${k}.gz`);
      const g = await stageGzip(p.path, file);
      return { file, spec: { ...base, sha256: g.sha256, size: g.size, compression: 'gzip', unpackedSize: g.unpackedSize } };
    }
    const h = await hashFile(p.path);
    return { file: p.path, spec: { ...base, sha256: h.sha256, size: h.size, compression: 'none' } };
  }
  const packed = st.isDirectory() ? await packTree(p.path, join(tmp, `${k}.tar`), p.type) : undefined;
  const file = packed ? join(tmp, `${k}.tar`) : p.path;
  // Check the tree as a device would, so a bad tree fails at build time, not in the field.
  const limits = { kind: p.type, unpackedSize: Number.MAX_SAFE_INTEGER, what: `payload ${p.name}`, ...(p.target ? { target: p.target } : {}) };
  const summary = await walkTree(createReadStream(file, { highWaterMark: CHUNK }), limits, async (_e, body) => {
    for await (const _ of body) {
      // only headers matter here
    }
  });
  const h = packed ?? (await hashFile(file));
  return { file, spec: { ...base, ...extra, sha256: h.sha256, size: h.size, unpackedSize: summary.fileBytes } };
}

/** Builds, signs and writes a bundle; returns its manifest, size and sha256. */
export async function buildBundle(input: BuildInput): Promise<BuildResult> {
  if (input.payloads.length === 0) throw new OtaError('MANIFEST_FIELD_VALUE', 'a bundle needs at least one payload');
  const outDir = dirname(input.out);
  let tmp: string;
  try {
    tmp = await mkdtemp(join(outDir, `.${basename(input.out)}.`));
  } catch (cause) {
    // The bundle is staged beside its final name, so the output directory must exist and be writable.
    const why = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? `directory ${outDir} does not exist` : errorMessage(cause);
    throw new OtaError('OUTPUT_UNWRITABLE', `output ${input.out}: cannot be written (${why})`, { cause });
  }
  try {
    const staged: Staged[] = [];
    for (const [k, p] of input.payloads.entries()) staged.push(await stage(p, tmp, k, input.index));
    const created = isoTime(input.created ?? new Date()).replace(/\.\d{3}Z$/, 'Z');
    const draft: Record<string, unknown> = {
      format: staged.some((s) => s.index) ? 2 : 1,
      product: input.product,
      version: input.version,
      compatible: input.compatible,
      created,
      modules: staged.map((s) => s.spec),
    };
    if (input.notes !== undefined) draft.notes = input.notes;
    const manifest = validateManifest(draft);
    const manifestBytes = serializeManifest(manifest);
    const signature = await signDetached(manifestBytes, input.key);
    const mtime = Math.floor(Date.parse(created) / 1000);

    const partial = join(tmp, 'bundle.partial');
    const fh = await open(partial, 'w');
    const hash = createHash('sha256');
    let size = 0;
    // Every byte hashed is on disk (writeAll goes on after a short write). Each write is
    // awaited, which also lets forEachChunk reuse its buffers.
    const write = async (b: Buffer): Promise<void> => {
      hash.update(b);
      const at = size;
      size += b.length;
      await writeAll(fh, [b], at);
    };
    try {
      await write(entryHeader('manifest.json', manifestBytes.length, mtime));
      await write(pad(manifestBytes));
      await write(entryHeader('manifest.json.sig', signature.length, mtime));
      await write(pad(signature));
      for (const s of staged) {
        if (!s.index) continue;
        await write(entryHeader(`index/${s.spec.name}`, s.index.length, mtime));
        await write(pad(s.index));
      }
      const total = staged.reduce((n, s) => n + s.spec.size, 0);
      let done = 0;
      for (const s of staged) {
        await write(entryHeader(`payloads/${s.spec.name}`, s.spec.size, mtime));
        const h = createHash('sha256');
        let n = 0;
        await forEachChunk(s.file, async (chunk) => {
          h.update(chunk);
          n += chunk.length;
          await write(chunk);
          done += chunk.length;
          input.onProgress?.(done, total);
        });
        // The input may have changed since it was hashed; never sign bytes we did not write.
        if (n !== s.spec.size || h.digest('hex') !== s.spec.sha256) {
          throw new OtaError('PAYLOAD_HASH_MISMATCH', `payload ${s.spec.name}: ${s.file} changed while the bundle was being built`);
        }
        await write(padding(s.spec.size));
      }
      await write(END_OF_ARCHIVE);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(partial, input.out);
    await fsyncPath(outDir);
    return { manifest, size, sha256: hash.digest('hex') };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** sha256 of the exact manifest bytes, as servers and agents record it. */
export function manifestDigest(bytes: Uint8Array): string {
  return sha256Hex(bytes);
}
