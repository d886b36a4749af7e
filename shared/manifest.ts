/**
 * The bundle manifest (DESIGN §3): its types and the one validator every reader uses.
 * Validation is strict: unknown fields, wrong types and out-of-range values are errors that
 * name the field, so a manifest means exactly one thing to every component.
 */
import { OtaError } from './errors.js';
import { decodeUtf8Strict, parseStrictJson } from './strict-json.js';
import { isVersion } from './version.js';

/** The largest manifest.json accepted. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

/** What a payload is and where it goes. */
export type ModuleType = 'image' | 'archive' | 'module';

/** One payload as the manifest declares it. */
export interface ModuleSpec {
  name: string;
  type: ModuleType;
  sha256: string;
  size: number;
  compression?: 'none' | 'gzip';
  unpackedSize?: number;
  target?: string;
  version?: string;
  /** The chunk index entry (`index/<name>`) of an image, format 2 (docs/DELTA.md). */
  index?: IndexSpec;
}

/** Hash and size of an image's `index/<name>` entry, as stored in the bundle. */
export interface IndexSpec {
  sha256: string;
  size: number;
}

/** The largest `index/<name>` entry accepted. */
export const MAX_INDEX_ENTRY_BYTES = 64 * 1024 * 1024;

/** The signed description of a bundle. */
export interface Manifest {
  /** 1, or 2 when an image carries a chunk index. */
  format: 1 | 2;
  product: string;
  version: string;
  compatible: string[];
  created: string;
  modules: ModuleSpec[];
  notes?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const IDENT = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** True when `name` may name a payload: it becomes `payloads/<name>` in the tar. */
export function isPayloadName(name: string): boolean {
  return NAME.test(name) && name !== '.' && name !== '..';
}

/** True when `target` is a clean absolute path inside a slot (no `..`, `.`, `//` or NUL). */
export function isTargetPath(target: string): boolean {
  if (!target.startsWith('/') || target === '/' || target.length > 1024 || target.includes('\0')) return false;
  return target
    .slice(1)
    .split('/')
    .every((part) => part !== '' && part !== '.' && part !== '..');
}

type Field = 'string' | 'number' | 'array' | 'object';

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function fieldCheck(obj: Record<string, unknown>, where: string) {
  return {
    req<T>(key: string, t: Field): T {
      if (!(key in obj)) throw new OtaError('MANIFEST_FIELD_MISSING', `manifest: field "${where}${key}" is required`);
      return this.opt<T>(key, t) as T;
    },
    opt<T>(key: string, t: Field): T | undefined {
      if (!(key in obj)) return undefined;
      const v = obj[key];
      if (typeOf(v) !== t) {
        throw new OtaError('MANIFEST_FIELD_TYPE', `manifest: field "${where}${key}" must be a ${t}, not ${typeOf(v)}`);
      }
      return v as T;
    },
    only(keys: readonly string[]): void {
      for (const k of Object.keys(obj)) {
        if (!keys.includes(k)) throw new OtaError('MANIFEST_UNKNOWN_FIELD', `manifest: unknown field "${where}${k}"`);
      }
    },
  };
}

function value(ok: boolean, field: string, why: string): void {
  if (!ok) throw new OtaError('MANIFEST_FIELD_VALUE', `manifest: field "${field}" ${why}`);
}

function byteCount(n: number, field: string): void {
  value(Number.isSafeInteger(n) && n >= 0, field, 'must be a whole number of bytes');
}

function validateIndex(raw: unknown, where: string): IndexSpec {
  if (typeOf(raw) !== 'object') throw new OtaError('MANIFEST_FIELD_TYPE', `manifest: field "${where}" must be an object, not ${typeOf(raw)}`);
  const f = fieldCheck(raw as Record<string, unknown>, `${where}.`);
  f.only(['sha256', 'size']);
  const sha256 = f.req<string>('sha256', 'string');
  value(SHA256.test(sha256), `${where}.sha256`, 'must be 64 lowercase hex digits');
  const size = f.req<number>('size', 'number');
  value(Number.isSafeInteger(size) && size > 0 && size <= MAX_INDEX_ENTRY_BYTES, `${where}.size`, `must be 1 to ${MAX_INDEX_ENTRY_BYTES} bytes`);
  return { sha256, size };
}

function validateModule(raw: unknown, index: number): ModuleSpec {
  const where = `modules[${index}].`;
  if (typeOf(raw) !== 'object') {
    throw new OtaError('MANIFEST_FIELD_TYPE', `manifest: field "modules[${index}]" must be an object, not ${typeOf(raw)}`);
  }
  const f = fieldCheck(raw as Record<string, unknown>, where);
  f.only(['name', 'type', 'sha256', 'size', 'compression', 'unpackedSize', 'target', 'version', 'index']);
  const name = f.req<string>('name', 'string');
  value(isPayloadName(name), `${where}name`, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  const type = f.req<string>('type', 'string');
  value(type === 'image' || type === 'archive' || type === 'module', `${where}type`, 'must be "image", "archive" or "module"');
  const sha256 = f.req<string>('sha256', 'string');
  value(SHA256.test(sha256), `${where}sha256`, 'must be 64 lowercase hex digits');
  const size = f.req<number>('size', 'number');
  byteCount(size, `${where}size`);
  const compression = f.opt<string>('compression', 'string');
  value(compression === undefined || compression === 'none' || compression === 'gzip', `${where}compression`, 'must be "none" or "gzip"');
  value(compression !== 'gzip' || type === 'image', `${where}compression`, 'may be "gzip" only for an image');
  const unpackedSize = f.opt<number>('unpackedSize', 'number');
  if (unpackedSize !== undefined) byteCount(unpackedSize, `${where}unpackedSize`);
  const needsUnpacked = type !== 'image' || compression === 'gzip';
  if (needsUnpacked && unpackedSize === undefined) {
    throw new OtaError('MANIFEST_FIELD_MISSING', `manifest: field "${where}unpackedSize" is required for a ${compression === 'gzip' ? 'gzip image' : type}`);
  }
  const target = f.opt<string>('target', 'string');
  if (type === 'module') {
    if (target === undefined) throw new OtaError('MANIFEST_FIELD_MISSING', `manifest: field "${where}target" is required for a module`);
    value(isTargetPath(target), `${where}target`, 'must be an absolute path without "..", "." or empty parts');
  } else {
    value(target === undefined, `${where}target`, `is only allowed for a module, not for an ${type}`);
  }
  const version = f.opt<string>('version', 'string');
  if (version !== undefined) value(isVersion(version), `${where}version`, 'must be a semantic version such as 1.4.2');
  const rawIndex = f.opt<unknown>('index', 'object');
  const indexSpec = rawIndex === undefined ? undefined : validateIndex(rawIndex, `${where}index`);
  value(indexSpec === undefined || type === 'image', `${where}index`, `is only allowed for an image, not for an ${type}`);
  const spec: ModuleSpec = { name, type: type as ModuleType, sha256, size };
  if (compression !== undefined) spec.compression = compression as 'none' | 'gzip';
  if (unpackedSize !== undefined) spec.unpackedSize = unpackedSize;
  if (target !== undefined) spec.target = target;
  if (version !== undefined) spec.version = version;
  if (indexSpec !== undefined) spec.index = indexSpec;
  return spec;
}

/** Checks a parsed manifest object against the schema; returns a clean typed copy. */
export function validateManifest(raw: unknown): Manifest {
  if (typeOf(raw) !== 'object') throw new OtaError('MANIFEST_FIELD_TYPE', `manifest: must be a JSON object, not ${typeOf(raw)}`);
  const f = fieldCheck(raw as Record<string, unknown>, '');
  f.only(['format', 'product', 'version', 'compatible', 'created', 'modules', 'notes']);
  const format = f.req<number>('format', 'number');
  value(format === 1 || format === 2, 'format', `must be 1 or 2 (this reader knows formats 1 and 2, got ${format})`);
  const product = f.req<string>('product', 'string');
  value(IDENT.test(product), 'product', 'must be 1-64 letters, digits, ".", "_", "+" or "-"');
  const version = f.req<string>('version', 'string');
  value(isVersion(version), 'version', 'must be a semantic version such as 2026.11.2');
  const compatible = f.req<unknown[]>('compatible', 'array');
  value(compatible.length > 0 && compatible.length <= 256, 'compatible', 'must list 1 to 256 device types');
  compatible.forEach((c, k) => {
    if (typeof c !== 'string') throw new OtaError('MANIFEST_FIELD_TYPE', `manifest: field "compatible[${k}]" must be a string, not ${typeOf(c)}`);
    value(IDENT.test(c), `compatible[${k}]`, 'must be 1-64 letters, digits, ".", "_", "+" or "-"');
  });
  const created = f.req<string>('created', 'string');
  value(ISO_UTC.test(created) && !Number.isNaN(Date.parse(created)), 'created', 'must be a UTC time such as 2026-11-21T10:00:00Z');
  const rawModules = f.req<unknown[]>('modules', 'array');
  value(rawModules.length > 0 && rawModules.length <= 1024, 'modules', 'must list 1 to 1024 payloads');
  const modules = rawModules.map(validateModule);
  const seen = new Set<string>();
  for (const m of modules) {
    if (seen.has(m.name)) throw new OtaError('MANIFEST_DUPLICATE_MODULE', `manifest: module name "${m.name}" is declared twice`);
    seen.add(m.name);
  }
  // Format 2 exists for the index entries: a format 1 manifest may not declare one, so a
  // format 1 reader never meets an entry it does not know.
  const indexed = modules.some((m) => m.index !== undefined);
  value(!indexed || format === 2, 'format', 'must be 2 when a module declares an index');
  const notes = f.opt<string>('notes', 'string');
  if (notes !== undefined) value(notes.length <= 65536, 'notes', 'must be at most 64 KiB');
  const manifest: Manifest = { format: format as 1 | 2, product, version, compatible: compatible as string[], created, modules };
  if (notes !== undefined) manifest.notes = notes;
  return manifest;
}

/** Parses manifest.json bytes (strict UTF-8, strict JSON, schema). */
export function parseManifest(bytes: Uint8Array): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new OtaError('MANIFEST_TOO_LARGE', `manifest.json is ${bytes.length} bytes; the limit is ${MAX_MANIFEST_BYTES}`);
  }
  return validateManifest(parseStrictJson(decodeUtf8Strict(bytes, 'manifest.json'), 'manifest.json'));
}

/** The canonical bytes the writer signs: two-space JSON and a final newline. */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}
