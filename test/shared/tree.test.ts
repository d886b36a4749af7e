import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OtaError } from '../../shared/errors.js';
import { walkTree, type TreeEntry } from '../../shared/tree.js';
import { lentPieces, otaFailure } from '../helpers/streams.js';

type Seen = Omit<TreeEntry, 'mtime'> & { mtime: number; sha256?: string };

async function walk(tar: Buffer, piece: number, unpackedSize = 1 << 30): Promise<Seen[]> {
  const seen: Seen[] = [];
  await walkTree(lentPieces(tar, piece), { kind: 'archive', unpackedSize, what: 'payload "root"' }, async (e, body) => {
    const h = createHash('sha256');
    let n = 0;
    for await (const c of body) {
      h.update(c);
      n += c.length;
    }
    seen.push({ ...e, mtime: e.mtime.getTime() / 1000, ...(e.type === 'file' ? { sha256: h.digest('hex') } : {}) });
    expect(n).toBe(e.type === 'file' ? e.size : 0);
  });
  return seen;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('walkTree on trees made by GNU tar', () => {
  let dir: string;
  const big = randomBytes(2 * 1024 * 1024 + 4321);
  const longDir = `d/${'long-directory-name-'.repeat(6)}`; // past ustar's 100-byte name
  const longTarget = `../${'t'.repeat(120)}`;
  const MTIME = 1_700_000_000;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'otaab-tree-'));
    const root = join(dir, 'root');
    await mkdir(join(root, longDir), { recursive: true });
    await writeFile(join(root, 'd/big.bin'), big);
    await writeFile(join(root, 'd/empty'), '');
    await writeFile(join(root, longDir, 'f.txt'), 'deep\n');
    await chmod(join(root, 'd/big.bin'), 0o4750);
    await symlink('big.bin', join(root, 'd/short-link'));
    await symlink(longTarget, join(root, 'd/long-link'));
    await link(join(root, 'd/big.bin'), join(root, 'd/hard'));
    await execa('mkfifo', [join(root, 'd/fifo')]);
    for (const p of ['d/big.bin', 'd/empty', `${longDir}/f.txt`]) await utimes(join(root, p), MTIME, MTIME);
    for (const format of ['gnu', 'pax']) {
      await execa('tar', [`--format=${format}`, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', root, '-cf', join(dir, `${format}.tar`), 'd']);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['gnu', 512],
    ['gnu', 1 << 20],
    ['pax', 4096],
    ['pax', 7],
  ])('reads a %s tar lent in %i-byte pieces: names, types, modes, links, times and bytes', async (format, piece) => {
    const tar = await readFile(join(dir, `${format}.tar`));
    const seen = await walk(tar, piece);
    const by = new Map(seen.map((e) => [e.path, e]));
    expect(by.get('d/big.bin')).toMatchObject({ type: 'file', size: big.length, mode: 0o4750, uid: 0, gid: 0, mtime: MTIME, sha256: sha(big) });
    expect(by.get('d/empty')).toMatchObject({ type: 'file', size: 0, sha256: sha(Buffer.alloc(0)) });
    expect(by.get(`${longDir}/f.txt`)).toMatchObject({ type: 'file', size: 5, sha256: sha(Buffer.from('deep\n')) });
    expect(by.get(longDir)).toMatchObject({ type: 'directory' });
    expect(by.get('d/short-link')).toMatchObject({ type: 'symlink', linkname: 'big.bin' });
    expect(by.get('d/long-link')).toMatchObject({ type: 'symlink', linkname: longTarget });
    // GNU tar stores the second name of a file as a hard link to the first it met.
    const hard = by.get('d/hard')!;
    const [first, second] = hard.type === 'link' ? ['d/big.bin', hard] : ['d/hard', by.get('d/big.bin')!];
    expect(second).toMatchObject({ type: 'link', linkname: first, size: 0 });
    expect(by.get('d/fifo')).toMatchObject({ type: 'fifo' });
    expect(seen.filter((e) => e.type === 'file').reduce((n, e) => n + e.size, 0)).toBe(big.length + 5);
  });

  it('skips what a consumer leaves unread, and stops at the declared size, letting the input go', async () => {
    const tar = await readFile(join(dir, 'gnu.tar'));
    const names: string[] = [];
    await walkTree(lentPieces(tar, 65_536), { kind: 'archive', unpackedSize: 1 << 30, what: 'x' }, async (e, body) => {
      names.push(e.path);
      for await (const c of body) {
        expect(c.length).toBeGreaterThan(0);
        break; // one piece, then away
      }
    });
    expect(names).toContain(`${longDir}/f.txt`);
    let closed = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        yield* lentPieces(tar, 65_536);
      } finally {
        closed = true;
      }
    }
    const e = await otaFailure(walkTree(source(), { kind: 'archive', unpackedSize: big.length - 1, what: 'x' }, async () => undefined));
    expect(e.code).toBe('TREE_TOO_LARGE');
    expect(closed).toBe(true);
  });

  it('refuses a tree cut short, or with bytes after its end, as PAYLOAD_CORRUPT', async () => {
    const tar = await readFile(join(dir, 'pax.tar'));
    const cut = await otaFailure(walk(tar.subarray(0, 3000), 1024));
    expect(cut.code).toBe('PAYLOAD_CORRUPT');
    expect(cut.message).toMatch(/^payload "root": /);
    const tail = await otaFailure(walk(Buffer.concat([tar, Buffer.from('appended')]), 1024));
    expect(tail.code).toBe('PAYLOAD_CORRUPT');
    const garbage = await otaFailure(walk(Buffer.alloc(1024, 0x41), 1024));
    expect(garbage.code).toBe('PAYLOAD_CORRUPT');
    expect(garbage.message).toContain('not a valid tar header');
  });

  it('takes an empty payload as an empty tree', async () => {
    expect(await walk(Buffer.alloc(0), 512)).toEqual([]);
  });

  it("passes the input's own OtaError on as it is", async () => {
    const tar = await readFile(join(dir, 'gnu.tar'));
    const own = new OtaError('PAYLOAD_HASH_MISMATCH', 'payload "root": sha256 differs');
    async function* failing(): AsyncGenerator<Buffer> {
      yield tar.subarray(0, 4096);
      throw own;
    }
    const e = await otaFailure(walkTree(failing(), { kind: 'archive', unpackedSize: 1 << 30, what: 'x' }, async (_e, body) => {
      for await (const c of body) void c;
    }));
    expect(e).toBe(own);
  });
});
