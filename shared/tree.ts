/**
 * Walks the tar inside an `archive` or `module` payload and enforces what DESIGN §3 forbids:
 * names with NUL, absolute or `..` paths, links (symbolic or hard) that lead outside the tree,
 * entries written through an earlier symlink, device nodes in a module, and more file bytes
 * than the declared unpackedSize (checked at each header, before any of its bytes are written).
 * The verifier and the agent's extractor both use it, so they agree on what is acceptable.
 */
import { posix } from 'node:path';
import { ByteSource, SourceFailure, guarded } from './byte-source.js';
import { OtaError, errorMessage, isOtaError } from './errors.js';
import { TarReader, padded, type TarHeader } from './tar-reader.js';

/** Kinds of entries a tree may hold. */
export type TreeEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

/** One checked entry; `path` is relative to the tree root ('' is the root itself). */
export interface TreeEntry {
  path: string;
  type: TreeEntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

/** What a tree is checked against. */
export interface TreeLimits {
  kind: 'archive' | 'module';
  /** For a module: its absolute target inside the slot; absolute symlinks must stay under it. */
  target?: string;
  /** The declared unpackedSize: the most file bytes the tree may hold. */
  unpackedSize: number;
  /** Names the payload in error messages. */
  what: string;
}

/** Totals of a walked tree. */
export interface TreeSummary {
  entries: number;
  fileBytes: number;
}

/** Normalises a member name: strips "./" and trailing "/", rejects NUL, absolute and "..". */
export function normaliseTreePath(name: string, what: string): string {
  if (name.includes('\0')) throw new OtaError('TREE_BAD_NAME', `${what}: an entry name contains a NUL byte`);
  if (name.startsWith('/')) throw new OtaError('TREE_ESCAPE', `${what}: entry "${name}" is an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new OtaError('TREE_ESCAPE', `${what}: entry "${name}" climbs out of the tree with ".."`);
  return parts.join('/');
}

function checkSymlink(path: string, link: string, limits: TreeLimits): void {
  const what = limits.what;
  if (link === '' || link.includes('\0')) throw new OtaError('TREE_BAD_NAME', `${what}: symlink "${path}" has an empty or NUL target`);
  if (link.startsWith('/')) {
    // In a root filesystem an absolute target resolves inside the slot once it is booted.
    if (limits.kind === 'archive') return;
    const target = limits.target ?? '/';
    const resolved = posix.normalize(link);
    if (resolved !== target && !resolved.startsWith(`${target}/`)) {
      throw new OtaError('TREE_LINK_ESCAPE', `${what}: symlink "${path}" points to ${link}, outside the module target ${target}`);
    }
    return;
  }
  let depth = path.split('/').length - 1;
  for (const part of link.split('/')) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) throw new OtaError('TREE_LINK_ESCAPE', `${what}: symlink "${path}" -> "${link}" climbs out of the tree`);
  }
}

/** An entry's kind by its ustar typeflag ('7', contiguous, is a regular file). */
const TYPES: Readonly<Record<string, TreeEntryType>> = {
  '0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'file',
};

/** Checks entries one by one; keeps what later entries are checked against. */
export class TreeChecker {
  private readonly symlinks = new Set<string>();
  private readonly files = new Set<string>();
  private bytes = 0;
  private count = 0;

  constructor(private readonly limits: TreeLimits) {}

  /** Checks one tar header and returns the clean entry, or throws TREE_* errors. */
  check(h: TarHeader): TreeEntry {
    const what = this.limits.what;
    const path = normaliseTreePath(h.name, what);
    const t = TYPES[h.type];
    if (!t) throw new OtaError('PAYLOAD_CORRUPT', `${what}: entry "${h.name}" has an unsupported tar type`);
    if (path === '' && t !== 'directory') throw new OtaError('TREE_BAD_NAME', `${what}: an entry of type ${t} has an empty name`);
    // Writing through a symlink laid down earlier would land wherever it points.
    const parts = path.split('/');
    for (let k = 1; k <= parts.length; k++) {
      const prefix = parts.slice(0, k).join('/');
      if (this.symlinks.has(prefix)) {
        throw new OtaError('TREE_LINK_ESCAPE', `${what}: entry "${path}" would be written through the symlink "${prefix}"`);
      }
    }
    if ((t === 'character-device' || t === 'block-device' || t === 'fifo') && this.limits.kind === 'module') {
      throw new OtaError('TREE_DEVICE_NODE', `${what}: entry "${path}" is a ${t}; modules may not contain device nodes`);
    }
    const size = t === 'file' ? h.size : 0;
    if (this.bytes + size > this.limits.unpackedSize) {
      throw new OtaError('TREE_TOO_LARGE', `${what}: entry "${path}" would bring the tree to ${this.bytes + size} bytes, past its declared unpackedSize ${this.limits.unpackedSize}`);
    }
    const entry: TreeEntry = {
      path,
      type: t,
      size,
      mode: h.mode ?? (t === 'directory' ? 0o755 : 0o644),
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      mtime: new Date((h.mtime ?? 0) * 1000),
    };
    if (t === 'symlink') {
      const link = h.linkname ?? '';
      checkSymlink(path, link, this.limits);
      this.symlinks.add(path);
      entry.linkname = link;
    } else if (t === 'link') {
      const link = h.linkname ?? '';
      if (link.startsWith('/') || link.split('/').includes('..')) {
        throw new OtaError('TREE_LINK_ESCAPE', `${what}: hard link "${path}" -> "${link}" points outside the tree`);
      }
      const target = normaliseTreePath(link, what);
      if (!this.files.has(target)) {
        throw new OtaError('TREE_LINK_ESCAPE', `${what}: hard link "${path}" -> "${link}" does not name an earlier file of the tree`);
      }
      entry.linkname = target;
    } else if (t === 'character-device' || t === 'block-device') {
      entry.devmajor = h.devmajor ?? 0;
      entry.devminor = h.devminor ?? 0;
    }
    if (t === 'file') this.files.add(path);
    else this.files.delete(path);
    this.bytes += size;
    this.count++;
    return entry;
  }

  /** Totals so far. */
  get summary(): TreeSummary {
    return { entries: this.count, fileBytes: this.bytes };
  }
}

/**
 * Reads a tree payload's tar (shared/tar-reader.ts, as strict as the bundle's own: checksums,
 * the end-of-archive marker, nothing but zeros after it), checks every entry and hands it to
 * `onEntry` with its body (file entries only carry bytes). The body's chunks are slices of the
 * input's, lent like them: valid until the next is asked for, so a consumer keeping bytes copies
 * them. Whatever `onEntry` leaves unread is skipped. Nothing is allocated per chunk.
 */
export async function walkTree(
  chunks: AsyncIterable<Buffer>,
  limits: TreeLimits,
  onEntry: (entry: TreeEntry, body: AsyncIterable<Buffer>) => Promise<void>,
): Promise<TreeSummary> {
  const checker = new TreeChecker(limits);
  const input = guarded(chunks);
  const source = new ByteSource(input);
  const reader = new TarReader(source, limits.what);
  const none: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: async function* () {} };
  try {
    for (;;) {
      let h: TarHeader | null;
      try {
        h = await reader.next();
      } catch (err) {
        // An empty payload is an empty tree (tar-stream, which read trees before, took it too).
        if (isOtaError(err) && err.code === 'BUNDLE_EMPTY') break;
        throw err;
      }
      if (!h) break;
      const clean = checker.check(h);
      // A directory's size field carries no data; any other entry's does (tar-stream's rule).
      const dataBytes = clean.type === 'directory' ? 0 : h.size;
      await onEntry(clean, clean.type === 'file' ? source.take(h.size, limits.what) : none);
      await source.skip(h.dataOffset + padded(dataBytes) - source.position, limits.what);
    }
  } catch (err) {
    // Let the input go (a file source closes its file), as reading it to its end would have.
    await input.return(undefined).catch(() => undefined);
    const e = err instanceof SourceFailure ? err.error : err;
    if (isOtaError(e)) {
      // The tar's own faults: the payload is corrupt, whatever the reader calls them in a bundle.
      if (!(err instanceof SourceFailure) && e.code.startsWith('BUNDLE_')) throw new OtaError('PAYLOAD_CORRUPT', e.message, { cause: e });
      throw e;
    }
    throw new OtaError('PAYLOAD_CORRUPT', `${limits.what}: the tar tree cannot be read (${errorMessage(e)})`, { cause: e });
  }
  return checker.summary;
}
