/**
 * Packs a directory into a tar for an `archive` or `module` payload, deterministically:
 * entries sorted by name, hard links kept as links, ownership and modes as on disk.
 * Streams file contents through tar-stream into a file while hashing it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { OtaError } from './errors.js';
import { CHUNK } from './hashing.js';

/** The packed tar's hash and size, and the file bytes it unpacks to. */
export interface PackedTree {
  sha256: string;
  size: number;
  unpackedSize: number;
}

async function* walk(root: string, rel = ''): AsyncGenerator<string> {
  const names = (await readdir(join(root, rel))).sort();
  for (const name of names) {
    const p = rel ? `${rel}/${name}` : name;
    yield p;
    const st = await lstat(join(root, p));
    if (st.isDirectory()) yield* walk(root, p);
  }
}

type Sink = ReturnType<tar.Pack["entry"]>;

async function writeBody(sink: Sink, path: string): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
    if (!sink.write(chunk as Buffer)) await new Promise<void>((r) => sink.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => {
    sink.once('error', reject);
    sink.end(null);
    sink.once('close', () => resolve());
  });
}

/** Packs `dir` into `out` as a tar; `kind` 'module' refuses device nodes up front. */
export async function packTree(dir: string, out: string, kind: 'archive' | 'module'): Promise<PackedTree> {
  const pack = tar.pack();
  const hash = createHash('sha256');
  let size = 0;
  let unpacked = 0;
  const file = createWriteStream(out);
  const piping = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      if (!file.write(chunk)) await new Promise<void>((r) => file.once('drain', () => r()));
    }
    file.end();
    await finished(file);
  })();
  const inodes = new Map<string, string>();
  try {
    for await (const rel of walk(dir)) {
      const abs = join(dir, rel);
      const st = await lstat(abs);
      const base = { name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) {
        pack.entry({ ...base, type: 'directory' });
      } else if (st.isSymbolicLink()) {
        pack.entry({ ...base, type: 'symlink', linkname: await readlink(abs) });
      } else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(id) : undefined;
        if (first !== undefined) {
          pack.entry({ ...base, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) inodes.set(id, rel);
        unpacked += st.size;
        await writeBody(pack.entry({ ...base, type: 'file', size: st.size }), abs);
      } else {
        if (kind === 'module') throw new OtaError('TREE_DEVICE_NODE', `${abs}: a module may not contain device nodes, FIFOs or sockets`);
        if (st.isSocket()) continue;
        const type = st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'character-device' : 'block-device';
        const rdev = st.rdev;
        pack.entry({ ...base, type, devmajor: (rdev >> 8) & 0xfff, devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) });
      }
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await piping.catch(() => undefined);
    throw err;
  }
  await piping;
  return { sha256: hash.digest('hex'), size, unpackedSize: unpacked };
}
