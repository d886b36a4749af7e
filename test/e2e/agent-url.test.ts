// End to end: `ota-agent install URL` streams the bundle over HTTP (got) into the slot. A
// download cut by a kill resumes after the restart with an HTTP Range request from the last
// durable offset (the slot's prefix is read back to keep the payload hash whole), so the bytes
// served stay close to the bundle's size.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../shared/hashing.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { drive, expectAtRest } from '../agent/helpers/cut.js';
import { agent, bootAndDaemon, withStore } from '../agent/helpers/proc.js';
import { makeRig, releaseImage, type Rig } from '../agent/helpers/rig.js';

interface Served {
  range?: string;
  bytes: number;
}

let server: Server;
let base: string;
const files = new Map<string, Buffer>();
const log: Served[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end('no such bundle');
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const part = body.subarray(start);
    log.push({ ...(req.headers.range ? { range: req.headers.range } : {}), bytes: part.length });
    res.writeHead(m ? 206 : 200, { 'content-length': part.length, ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

const rigs: Rig[] = [];
afterAll(async () => Promise.all(rigs.map((r) => r.cleanup())));

async function device(): Promise<Rig> {
  // These count every request of a whole download; a delta probe (test/delta) would add one.
  const rig = await makeRig({ slotSize: 4 << 20, config: { checkpointBytes: 256 * 1024, delta: { enabled: false } } });
  rigs.push(rig);
  expect((await bootAndDaemon(rig)).code).toBe(0);
  return rig;
}

describe('install from a URL', { timeout: 180_000 }, () => {
  it('downloads, installs and commits', async () => {
    const rig = await device();
    const { path } = await imageBundle(rig.dir, rig.key, releaseImage('1.0.0', true, 1 << 20), { version: '1.0.0' });
    files.set('/b/1.0.0.otab', await readFile(path));
    const r = await agent(rig, ['install', `${base}/b/1.0.0.otab`]);
    expect(r.code, r.stderr).toBe(0);
    expect((await bootAndDaemon(rig)).code).toBe(0);
    withStore(rig, (s) => expect(s.transactions(1)[0]).toMatchObject({ state: 'committed', source: `${base}/b/1.0.0.otab`, bytesRead: files.get('/b/1.0.0.otab')!.length }));
  });

  it('refuses a URL the server does not have, before touching anything', async () => {
    const rig = await device();
    const r = await agent(rig, ['install', `${base}/b/missing.otab`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ota-agent install: DOWNLOAD_REFUSED: .*HTTP 404/);
    expect(withStore(rig, (s) => s.transactions().length)).toBe(0);
  });

  it('resumes a killed download with Range from the durable offset after the restart', async () => {
    const rig = await device();
    const slotA = sha256Hex(await readFile(rig.dev.slots.A));
    const { path } = await imageBundle(rig.dir, rig.key, releaseImage('1.0.0', true, 2 << 20), { version: '1.0.0' });
    const bytes = await readFile(path);
    files.set('/b/resume.otab', bytes);
    log.length = 0;
    // Durable writes of the install: 1 start, 2 disarm, then per 256 KiB checkpoint a slot
    // fsync and a store write. Cut after the 4th checkpoint's store write (2 + 4 * 2 = 10).
    const driven = await drive(rig, `${base}/b/resume.otab`, { run: 0, env: { OTA_CRASH_AFTER_WRITE: '10' } }, true);
    expect(driven.cutRun).toBe(0);
    await expectAtRest(rig, { state: 'committed' }, slotA);
    expect(log).toHaveLength(2);
    expect(log[0]!.range).toBeUndefined();
    const from = Number(/^bytes=(\d+)-$/.exec(log[1]!.range ?? '')?.[1]);
    const dataOffset = withStore(rig, (s) => s.transactions(1)[0]!.resumeDataOffset!);
    // Resumed after 4 checkpoints (at least 1 MiB into the payload), not from zero: the second
    // request carries only the rest of the bundle.
    expect(from - dataOffset).toBeGreaterThanOrEqual(4 * 256 * 1024);
    expect(from).toBeLessThan(bytes.length);
    expect(log[1]!.bytes).toBe(bytes.length - from);
  });
});
