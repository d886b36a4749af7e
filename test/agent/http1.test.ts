// The bundle download's HTTP/1.1 client (agent/download/http1.ts) against real servers on
// 127.0.0.1: raw TCP servers that write exactly the bytes under test (a head split across reads,
// chunked bodies cut at every awkward place, 1xx answers, bodies to the connection's end,
// malformed answers), node's own http server for redirects, and an HTTPS server with a
// certificate made by openssl. The body arrives as views of one buffer, read into again and
// again: no memory per read.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpGet, HttpRequestError, KeepAlive, type HttpAnswer, type HttpGetOptions } from '../../agent/download/http1.js';
import { pseudoRandom } from './helpers/bundles.js';

const servers: (Server | HttpServer)[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    if ('closeAllConnections' in s) s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function listen<S extends Server | HttpServer>(s: S): Promise<string> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A server that reads a request's head and answers with `write(socket, request)`. */
async function raw(write: (socket: Socket, head: string) => void | Promise<void>): Promise<string> {
  const sockets: Socket[] = [];
  const s = createTcpServer((socket) => {
    sockets.push(socket);
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      void write(socket, head);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  });
  // close() waits for open connections: end the ones a test left open first.
  const orig = s.close.bind(s);
  s.close = ((cb?: (err?: Error) => void) => {
    sockets.forEach((x) => x.destroy());
    return orig(cb);
  }) as typeof s.close;
  return listen(s);
}

/** Writes `parts` one by one with a pause between, so each arrives as a read of its own. */
async function dribble(socket: Socket, parts: (string | Buffer)[], end = true): Promise<void> {
  for (const p of parts) {
    socket.write(p);
    await new Promise((r) => setTimeout(r, 15));
  }
  if (end) socket.end();
}

interface Outcome {
  answer?: HttpAnswer;
  body: Buffer;
  error?: Error;
  /** The distinct ArrayBuffers the views came from. */
  buffers: Set<ArrayBufferLike>;
  views: number;
}

function get(url: string, opts: Partial<HttpGetOptions> = {}, onBody?: (v: Buffer, req: HttpGet) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const out: Outcome = { body: Buffer.alloc(0), buffers: new Set(), views: 0 };
    const done = (): void => {
      out.body = Buffer.concat(parts);
      resolve(out);
    };
    const req: HttpGet = new HttpGet(url, { timeoutMs: 5000, ...opts }, {
      answer: (a) => {
        out.answer = a;
      },
      body: (v) => {
        out.buffers.add(v.buffer);
        out.views++;
        // The view is lent for the call only: keep a copy.
        parts.push(Buffer.from(v));
        onBody?.(v, req);
      },
      end: done,
      error: (err) => {
        out.error = err;
        done();
      },
    });
    req.start();
  });
}

const data = pseudoRandom(300_000, 5);

describe('HttpGet', { timeout: 30_000 }, () => {
  it('reads a Content-Length body arriving in many reads, all into the one buffer, the head split across reads', async () => {
    const host = await raw((s) => {
      const head = `HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\nETag: "x"\r\nX-Twice: a\r\nx-twice: b\r\n\r\n`;
      // The head in three writes, cutting the blank line in two; the body in pieces of odd sizes.
      const parts: (string | Buffer)[] = [head.slice(0, 10), head.slice(10, -3), head.slice(-3)];
      for (let at = 0; at < data.length; at += 70_001) parts.push(data.subarray(at, at + 70_001));
      return dribble(s, parts, false);
    });
    const o = await get(`http://${host}/b`);
    expect(o.error).toBeUndefined();
    expect(o.answer).toMatchObject({ status: 200, headers: { 'content-length': String(data.length), etag: '"x"', 'x-twice': 'a, b' }, redirected: false });
    expect(o.body.equals(data)).toBe(true);
    // The server did not close the connection: the client ended at the body's end.
    expect(o.views).toBeGreaterThan(4);
    expect(o.buffers.size).toBe(1);
  });

  it('sends the request it was given: GET, Host, the headers, Connection: close', async () => {
    let seen = '';
    const host = await raw((s, head) => {
      seen = head;
      s.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
    const o = await get(`http://${host}/v1/bundles/abc?x=1`, { headers: { range: 'bytes=5-', authorization: 'Bearer t' } });
    expect(o.answer?.status).toBe(204);
    expect(o.body.length).toBe(0);
    const lines = seen.split('\r\n');
    expect(lines[0]).toBe('GET /v1/bundles/abc?x=1 HTTP/1.1');
    expect(lines).toEqual(expect.arrayContaining([`Host: ${host}`, 'Connection: close', 'range: bytes=5-', 'authorization: Bearer t']));
  });

  it('reads chunked bodies with extensions and trailers, a chunk line cut anywhere, after a 100 Continue', async () => {
    const chunks = [data.subarray(0, 1), data.subarray(1, 65_537), data.subarray(65_537, 200_000), data.subarray(200_000)];
    // Build it exactly: size lines (one with an extension), data, CRLF; the last chunk, a trailer.
    const parts: Buffer[] = [Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1')];
    chunks.forEach((c, i) => parts.push(Buffer.from(`${c.length.toString(16)}${i === 1 ? ';name=value' : ''}\r\n`, 'latin1'), c, Buffer.from('\r\n', 'latin1')));
    parts.push(Buffer.from('0\r\nX-Trailer: t\r\n\r\n', 'latin1'));
    const whole = Buffer.concat(parts);
    // Cut the wire into pieces of 1 to 9 bytes around every chunk line, large ones between.
    const pieces: Buffer[] = [];
    for (let at = 0; at < whole.length; ) {
      const inLine = whole.subarray(Math.max(0, at - 2), at + 12).includes('\r\n');
      const n = inLine ? 1 + (at % 9) : 50_000;
      pieces.push(whole.subarray(at, at + n));
      at += n;
    }
    const host = await raw((s) => dribble(s, pieces, false));
    const o = await get(`http://${host}/c`);
    expect(o.error).toBeUndefined();
    expect(o.answer?.status).toBe(200);
    expect(o.body.equals(data)).toBe(true);
  });

  it('reads a body without length to the connection\'s end', async () => {
    const host = await raw((s) => dribble(s, ['HTTP/1.0 200 OK\r\n\r\n', data.subarray(0, 100_000), data.subarray(100_000)]));
    const o = await get(`http://${host}/`);
    expect(o.error).toBeUndefined();
    expect(o.body.equals(data)).toBe(true);
  });

  it('fails, naming what was wrong, on a connection closed early and on answers that are not HTTP', async () => {
    const cases: [string | Buffer, RegExp][] = [
      [`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n${'x'.repeat(1000)}`, /closed with 299000 bytes of the body still to come/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc', /closed inside a chunked body/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /chunk size "zz"/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n', /no line end after a chunk/],
      ['SSH-2.0-OpenSSH_9.2\r\n\r\n', /answered "SSH-2.0-OpenSSH_9.2", not an HTTP\/1.1 status line/],
      ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', /header line "no colon here"/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n', /Content-Length "12x"/],
      ['HTTP/1.1 200 OK\r\n', /closed before the answer/],
    ];
    for (const [wire, message] of cases) {
      const host = await raw((s) => dribble(s, [wire]));
      const o = await get(`http://${host}/`);
      expect(o.error, String(wire).slice(0, 40)).toBeInstanceOf(HttpRequestError);
      expect(o.error!.message).toMatch(message);
    }
    const big = await raw((s) => dribble(s, ['HTTP/1.1 200 OK\r\n', `X-Big: ${'y'.repeat(70_000)}\r\n`], false));
    expect((await get(`http://${big}/`)).error?.message).toMatch(/more than 65536 bytes of head/);
  });

  it('times out waiting for the answer, and reports a refused connection with its code', async () => {
    const host = await raw(() => undefined);
    const o = await get(`http://${host}/`, { timeoutMs: 200 });
    expect(o.error).toMatchObject({ code: 'HTTP_TIMEOUT', event: 'response' });
    const refused = await get('http://127.0.0.1:1/');
    expect(refused.error).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses a header it cannot send, before connecting', async () => {
    const o = await get('http://127.0.0.1:1/', { headers: { authorization: 'Bearer a\r\nX-Evil: 1' } });
    expect(o.error).toMatchObject({ code: 'HTTP_BAD_REQUEST' });
    expect(o.error!.message).toMatch(/header "authorization"/);
  });

  it('follows redirects: relative and to another origin, which gets no Authorization; dropped headers go nowhere past one; at most 10', async () => {
    const seen: { url: string; auth?: string; ifRange?: string }[] = [];
    const record = (req: IncomingMessage): void => {
      seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}), ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}) });
    };
    const store = await listen(
      createHttpServer((req, res) => {
        record(req);
        res.writeHead(200, { 'content-length': String(data.length) }).end(data);
      }),
    );
    const api = await listen(
      createHttpServer((req, res) => {
        record(req);
        if (req.url === '/a') res.writeHead(301, { location: '/b' }).end('moved');
        else if (req.url === '/b') res.writeHead(307, { location: `http://${store}/bucket/x?sig=1` }).end();
        else if (req.url?.startsWith('/loop')) res.writeHead(302, { location: `/loop${Number(req.url.slice(5) || 0) + 1}` }).end();
        else res.writeHead(404).end();
      }),
    );
    const o = await get(`http://${api}/a`, { headers: { authorization: 'Bearer t', 'if-range': '"e"' }, dropOnRedirect: ['if-range'] });
    expect(o.error).toBeUndefined();
    expect(o.answer).toMatchObject({ status: 200, url: `http://${store}/bucket/x?sig=1`, redirected: true });
    expect(o.body.equals(data)).toBe(true);
    expect(seen).toEqual([{ url: '/a', auth: 'Bearer t', ifRange: '"e"' }, { url: '/b', auth: 'Bearer t' }, { url: '/bucket/x?sig=1' }]);

    const loop = await get(`http://${api}/loop`);
    expect(loop.error).toMatchObject({ code: 'HTTP_REDIRECTS' });
    expect(loop.error!.message).toMatch(/more than 10 redirects, the last to .*\/loop11$/);
  });

  it('pauses: the server waits on TCP while the reader holds, and the body is whole', async () => {
    const big = pseudoRandom(8 << 20, 11);
    let sentAtPause = -1;
    let written = 0;
    const host = await raw(async (s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
      for (let at = 0; at < big.length; at += 64 << 10) {
        if (!s.write(big.subarray(at, at + (64 << 10)))) await new Promise((r) => s.once('drain', r));
        written = at + (64 << 10);
      }
    });
    let paused = false;
    const o = await get(`http://${host}/`, {}, (_v, req) => {
      if (paused) return;
      paused = true;
      req.pause();
      setTimeout(() => {
        sentAtPause = written;
        req.resume();
      }, 300);
    });
    expect(o.error).toBeUndefined();
    expect(createHash('sha256').update(o.body).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
    // While paused the server got no further than the socket buffers hold, far from 8 MiB.
    expect(sentAtPause).toBeGreaterThan(0);
    expect(sentAtPause).toBeLessThan(6 << 20);
  });

  it('speaks HTTPS, checking the certificate against the CAs it trusts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otaab-http1-'));
    try {
      const ssl = (args: string[]) => execa('openssl', args, { cwd: dir, stdin: 'ignore' });
      await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
      await ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', 'key.pem', '-out', 'cert.pem']);
      const [key, cert] = await Promise.all([readFile(join(dir, 'key.pem')), readFile(join(dir, 'cert.pem'))]);
      const host = await listen(createHttpsServer({ key, cert }, (_req, res) => res.writeHead(200, { 'content-length': String(data.length) }).end(data)));
      const o = await get(`https://${host}/`, { ca: cert });
      expect(o.error).toBeUndefined();
      expect(o.body.equals(data)).toBe(true);
      expect(o.buffers.size).toBe(1);
      const untrusted = await get(`https://${host}/`);
      expect(untrusted.error?.message).toMatch(/self[- ]signed certificate/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('HttpGet with KeepAlive', { timeout: 30_000 }, () => {
  /** node's http server on 127.0.0.1, counting connections; `answer` writes each response. */
  async function counting(answer: (req: IncomingMessage, res: import('node:http').ServerResponse) => void, keepAliveTimeout = 5000): Promise<{ host: string; connections: () => number; server: HttpServer }> {
    let n = 0;
    const server = createHttpServer(answer);
    server.keepAliveTimeout = keepAliveTimeout;
    server.on('connection', () => n++);
    const host = await listen(server);
    return { host, connections: () => n, server };
  }

  it('sends requests one after another over one connection, and closes it when told', async () => {
    const { host, connections } = await counting((req, res) => {
      const [a, b] = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '')!.slice(1).map(Number) as [number, number];
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${data.length}`, 'content-length': b - a + 1 });
      res.end(data.subarray(a, b + 1));
    });
    const pool = new KeepAlive();
    try {
      for (const [a, b] of [
        [0, 999],
        [1000, 150_000],
        [200_000, 299_999],
      ] as const) {
        const r = await get(`http://${host}/b.otab`, { keepAlive: pool, headers: { range: `bytes=${a}-${b}` } });
        expect(r.error).toBeUndefined();
        expect(r.body.equals(data.subarray(a, b + 1))).toBe(true);
      }
      expect(connections()).toBe(1);
    } finally {
      pool.close();
    }
  });

  it('asks again on a new connection when the server closed the kept one', async () => {
    const { host, connections, server } = await counting((_req, res) => res.end('ok'));
    const pool = new KeepAlive();
    try {
      expect((await get(`http://${host}/`, { keepAlive: pool })).body.toString()).toBe('ok');
      // The server lets its idle connection go, as it does after its keep-alive timeout.
      server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
      const again = await get(`http://${host}/`, { keepAlive: pool });
      expect(again.error).toBeUndefined();
      expect(again.body.toString()).toBe('ok');
      expect(connections()).toBe(2);
    } finally {
      pool.close();
    }
  });

  it('does not keep a connection the answer closes, nor one with bytes after the body', async () => {
    const pool = new KeepAlive();
    const conns: number[] = [];
    try {
      for (const tail of ['Connection: close\r\n', '']) {
        let n = 0;
        const host = await raw((s) => {
          n++;
          // HTTP/1.1 with a body of 2, and, in the second case, junk after it.
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${tail}\r\nok${tail ? '' : 'JUNK'}`);
        });
        for (let i = 0; i < 2; i++) {
          const r = await get(`http://${host}/`, { keepAlive: pool });
          expect(r.error).toBeUndefined();
          expect(r.body.toString()).toBe('ok');
        }
        conns.push(n);
      }
      expect(conns).toEqual([2, 2]);
    } finally {
      pool.close();
    }
  });
});
