// Hostile input to a delta install, each refused with its own code and nothing armed: signed
// indexes that lie (hash, order, overlap, size, end), and an origin that answers a range with
// the whole bundle, with other bytes than asked, or with chunk bytes that do not hash.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv } from '../../scripts/sim/simulator.js';
import { indexRawImage } from '../../shared/chunk-build.js';
import { packIndex, type ChunkEntry, type ChunkIndex } from '../../shared/chunk-index.js';
import { agent, bootAndDaemon, inFlight } from '../agent/helpers/proc.js';
import { makeRig, type Rig } from '../agent/helpers/rig.js';
import { craftIndexed } from './craft.js';
import { deltaImage, edited, indexedBundle } from './helpers.js';

const SIZE = 4 * 1024 * 1024;
let rig: Rig;
let v2: Buffer;
let v2Index: ChunkIndex;
let good: Buffer;

/** How the origin misbehaves on the n-th request (0-based; the head takes the first two). */
type Fault = 'none' | 'whole' | 'shifted' | 'flipped';
let fault: Fault = 'none';
let served: Buffer = Buffer.alloc(0);
let requests = 0;
let server: Server;
let url = '';

beforeAll(async () => {
  rig = await makeRig({ slotSize: 6 * 1024 * 1024 });
  expect((await bootAndDaemon(rig)).code).toBe(0);
  const v1 = deltaImage('1.0.0', SIZE);
  const inst = await agent(rig, ['install', await indexedBundle(rig.dir, rig.key, '1.0.0', v1)]);
  expect(inst.code, inst.stderr).toBe(0);
  expect((await bootAndDaemon(rig)).code).toBe(0);
  v2 = edited(v1, '2.0.0', [[1_500_000, 200_000]]);
  await (await import('node:fs/promises')).writeFile(join(rig.dir, 'v2.img'), v2);
  v2Index = (await indexRawImage(join(rig.dir, 'v2.img'))).index;
  good = await readFile(await indexedBundle(rig.dir, rig.key, '2.0.0', v2));
  server = createServer((req, res) => {
    const n = requests++;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(200, { 'content-length': served.length });
      res.end(served);
      return;
    }
    let [a, b] = [Number(m[1]), Math.min(Number(m[2]), served.length - 1)];
    const bad = n >= 2 ? fault : 'none';
    if (bad === 'whole') {
      res.writeHead(200, { 'content-length': served.length });
      res.end(served);
      return;
    }
    if (bad === 'shifted') [a, b] = [a + 1, b + 1];
    const body = Buffer.from(served.subarray(a, b + 1));
    if (bad === 'flipped') body[body.length >> 1] = body[body.length >> 1]! ^ 0x55;
    res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${served.length}`, 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2.otab`;
}, 120_000);
afterAll(async () => {
  server?.close();
  await rig?.cleanup();
});

async function expectRefused(source: string, code: string): Promise<void> {
  const before = await readEnv(rig.dev.grubenvPath);
  const r = await agent(rig, ['install', source]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(code);
  // Nothing armed: the boot order and the running slot are as they were; the target at most
  // disarmed (a refusal before the transaction touches nothing, a failed download leaves A_OK=0).
  const after = await readEnv(rig.dev.grubenvPath);
  expect(after.ORDER).toBe(before.ORDER);
  expect(after.B_OK).toBe('1');
  expect(['0', before.A_OK]).toContain(after.A_OK);
  expect(inFlight(rig)).toBe(false);
}

async function craftedIndex(name: string, edit: (c: ChunkEntry[]) => ChunkEntry[], indexSha256?: string): Promise<string> {
  const out = join(rig.dir, `${name}.otab`);
  await craftIndexed(out, rig.key.key, '2.0.0', v2, packIndex({ ...v2Index, chunks: edit([...v2Index.chunks]) }), indexSha256 ? { indexSha256 } : {});
  return out;
}

describe('hostile delta input (real agent processes)', { timeout: 300_000 }, () => {
  it('an index whose hash does not match the signed one: INDEX_HASH_MISMATCH', async () => {
    await expectRefused(await craftedIndex('hash', (c) => c, 'e'.repeat(64)), 'INDEX_HASH_MISMATCH');
  });
  it('unsorted chunks: INDEX_UNSORTED', async () => {
    await expectRefused(await craftedIndex('unsorted', (c) => [c[0]!, c[1]!, c[0]!, ...c.slice(3)]), 'INDEX_UNSORTED');
  });
  it('overlapping chunks: INDEX_OVERLAP', async () => {
    await expectRefused(await craftedIndex('overlap', (c) => c.map((x, i) => (i === 2 ? { ...x, offset: x.offset - 4, storedOffset: x.storedOffset - 4 } : x))), 'INDEX_OVERLAP');
  });
  it('oversized chunks: INDEX_CHUNK_TOO_LARGE', async () => {
    await expectRefused(await craftedIndex('oversized', (c) => [{ ...c[0]!, length: 300_000, storedLength: 300_000 }, ...c.slice(1)]), 'INDEX_CHUNK_TOO_LARGE');
  });
  it('chunks past the image size: INDEX_PAST_END', async () => {
    const last = v2Index.chunks.length - 1;
    await expectRefused(await craftedIndex('past', (c) => c.map((x, i) => (i === last ? { ...x, length: x.length + 10, storedLength: x.storedLength + 10 } : x))), 'INDEX_PAST_END');
  });
  it('a range answered with 200 and the whole bundle: DELTA_RANGE_NOT_PARTIAL', async () => {
    [served, fault, requests] = [good, 'whole', 0];
    await expectRefused(url, 'DELTA_RANGE_NOT_PARTIAL');
  });
  it('a range answered with other bytes than asked: DELTA_RANGE_MISMATCH', async () => {
    [served, fault, requests] = [good, 'shifted', 0];
    await expectRefused(url, 'DELTA_RANGE_MISMATCH');
  });
  it('a chunk whose bytes do not hash: DELTA_CHUNK_HASH_MISMATCH', async () => {
    [served, fault, requests] = [good, 'flipped', 0];
    await expectRefused(url, 'DELTA_CHUNK_HASH_MISMATCH');
  });
  it('and the same origin behaving: the delta install lands', async () => {
    [served, fault, requests] = [good, 'none', 0];
    const r = await agent(rig, ['install', url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/delta: \d+ of \d+ image bytes from slot B/);
    expect((await readEnv(rig.dev.grubenvPath)).ORDER).toBe('A B');
  });
});
