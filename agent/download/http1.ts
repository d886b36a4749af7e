/**
 * One HTTP/1.1 GET whose body is read into a fixed buffer: the transport of the bundle
 * download (http-source.ts).
 *
 * Node's http client, and got over it, hands every socket read to JavaScript as a fresh 64 KiB
 * Buffer and every piece of body as a copy of it: some 160 ArrayBuffers a second at 10 MB/s,
 * each garbage once hashed and written, and most of the URL install's memory beyond the local
 * file's was those, waiting for V8 to collect them (docs/PERFORMANCE.md). Here the socket reads
 * into one buffer (the `onread` option of `net.connect` and `tls.connect`) and the body is
 * handed out as views of it, valid during the call: a download allocates no memory per read.
 *
 * What a bundle download needs of HTTP, and no more: http and https (the system's CAs, and
 * hosts checked as Node's TLS checks them); redirects (301, 302, 303, 307, 308, at most 10;
 * past one to another origin the Authorization header is not sent, and the headers named by
 * `dropOnRedirect` past any); bodies by Content-Length, chunked or to the connection's end;
 * 1xx answers skipped; a timeout from the connection's start to the answer's head. Each request
 * has its connection of its own (`Connection: close`, as a download of hundreds of MiB gains
 * nothing from keeping one), never asks for compression, and goes to no proxy (the agent's
 * other HTTP, through got, does not either).
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type * as Tls from 'node:tls';
import { lazyBuiltin } from '../../shared/lazy-builtin.js';

/** node:tls, loaded by the first https request (a local install needs none). */
const tls = lazyBuiltin<typeof Tls>('node:tls');

/** Bytes read from the socket at once: what Node's own reads take. */
const READ = 64 << 10;
/** The most an answer's status line and headers may take. */
const MAX_HEAD = 64 << 10;
const MAX_REDIRECTS = 10;
const REDIRECT = new Set([301, 302, 303, 307, 308]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Why a request failed, when the socket did not say (its errors keep their own codes). */
export type HttpFailure = 'HTTP_TIMEOUT' | 'HTTP_BAD_ANSWER' | 'HTTP_CLOSED' | 'HTTP_REDIRECTS' | 'HTTP_BAD_REQUEST';

export class HttpRequestError extends Error {
  override readonly name = 'HttpRequestError';
  constructor(
    readonly code: HttpFailure,
    message: string,
    /** For HTTP_TIMEOUT: what was awaited (`connect`, `secureConnect`, `response`). */
    readonly event?: string,
  ) {
    super(message);
  }
}

/** The final answer's status and head. */
export interface HttpAnswer {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** Where it came from. */
  readonly url: string;
  /** True when a redirect was followed to get it. */
  readonly redirected: boolean;
}

export interface HttpGetOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** From each request's start (lookup, connect, TLS) to its answer's head. */
  readonly timeoutMs: number;
  /** Headers not sent past a redirect (lower case). */
  readonly dropOnRedirect?: readonly string[];
  /** Certificates to trust instead of the system's (tests). */
  readonly ca?: string | Buffer;
  /**
   * Connections kept open between requests (HTTP/1.1 keep-alive): a delta install's range
   * requests, one after another to one origin, then cost no connection (and TLS handshake)
   * each. Without it each request has its own connection, closed after it.
   */
  readonly keepAlive?: KeepAlive;
}

/** What the request tells its user. After `end` or `error` it calls nothing more. */
export interface HttpGetHandlers {
  /** The final answer's head: the body follows unless the handler destroys the request. */
  answer(a: HttpAnswer): void;
  /** Body bytes: a view of the read buffer, valid during the call only. */
  body(view: Buffer): void;
  /** The body ended where the answer said it would. */
  end(): void;
  error(err: Error): void;
}

type State = 'head' | 'length' | 'to-close' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'done';

/** How long a kept connection may wait for the next request (servers close theirs after 5 s and more). */
export const IDLE_MS = 4000;

/**
 * A connection and the buffer its socket reads into, lent to one request at a time: the
 * socket's events go to the request that has it, or, while it waits in a KeepAlive, end it.
 */
class Conn {
  readonly buf = Buffer.allocUnsafeSlow(READ);
  owner: HttpGet | undefined;
  idle: NodeJS.Timeout | undefined;
  socket!: Socket;
  dead = false;

  constructor(
    readonly key: string,
    private readonly pool: KeepAlive | undefined,
  ) {}

  /** Connects with `connect`, routing the socket's reads and ends to the owner. */
  open(connect: (onread: { buffer: Buffer; callback: (n: number) => boolean }) => Socket): Socket {
    this.socket = connect({ buffer: this.buf, callback: (n) => (this.owner ? this.owner.onRead(this, n) : this.drop()) });
    this.socket.on('error', (err) => (this.owner ? this.owner.onSocketError(this, err) : this.drop()));
    const ended = (): void => void (this.owner ? this.owner.onSocketEnd(this) : this.drop());
    this.socket.once('end', ended);
    this.socket.once('close', ended);
    return this.socket;
  }

  /** Closes the connection for good (also what an idle one does on any event). */
  drop(): boolean {
    this.dead = true;
    clearTimeout(this.idle);
    this.pool?.forget(this);
    this.socket.destroy();
    return false;
  }
}

/**
 * Connections kept between requests, one idle per origin (a delta's ranges come one after
 * another). An idle one holds no reference on the event loop and is closed after IDLE_MS; a
 * request that finds its kept connection closed by the server before any answer byte asks
 * again on a new one (the usual race of keep-alive), which no retry budget counts.
 */
export class KeepAlive {
  private readonly idle = new Map<string, Conn>();

  /** The idle connection to `key`, taken out. */
  take(key: string): Conn | undefined {
    const c = this.idle.get(key);
    if (!c) return undefined;
    this.idle.delete(key);
    clearTimeout(c.idle);
    c.socket.ref();
    return c;
  }

  /** Keeps `c` for the next request to its origin. */
  give(c: Conn): void {
    if (c.dead) return;
    this.idle.get(c.key)?.drop();
    this.idle.set(c.key, c);
    c.socket.unref();
    c.idle = setTimeout(() => c.drop(), IDLE_MS);
    c.idle.unref();
  }

  forget(c: Conn): void {
    if (this.idle.get(c.key) === c) this.idle.delete(c.key);
  }

  /** Closes every idle connection. */
  close(): void {
    for (const c of [...this.idle.values()]) c.drop();
  }
}

/** A GET in flight; see the file's comment. */
export class HttpGet {
  private readonly headers: Record<string, string>;
  private url: URL;
  private redirects = 0;
  private conn: Conn | undefined;
  private socket: Socket | undefined;
  /** The connection was kept from a request before, and no byte of the answer came yet. */
  private keptUnanswered = false;
  /** The answer lets the connection be kept: HTTP/1.1, no `Connection: close`, its body delimited. */
  private reusable = false;
  private timer: NodeJS.Timeout | undefined;
  private awaiting = 'connect';
  private state: State = 'head';
  private head = '';
  /** Body bytes left: of the Content-Length, or of the current chunk. */
  private left = 0;
  private line = '';
  private paused = false;

  constructor(
    url: string,
    private readonly opts: HttpGetOptions,
    private readonly on: HttpGetHandlers,
  ) {
    this.url = new URL(url);
    this.headers = { ...opts.headers };
  }

  /** Sends the request; the handlers hear of it from now on (a bad header at once). */
  start(): void {
    this.request();
  }

  /** Stops reading until resume(): the server's sending waits on TCP's window. */
  pause(): void {
    this.paused = true;
    this.socket?.pause();
  }

  resume(): void {
    this.paused = false;
    this.socket?.resume();
  }

  /** Ends the request; with `err`, the user's `error` hears it (once, unless it had ended). */
  destroy(err?: Error): void {
    if (this.state === 'done') return;
    this.close();
    if (err) this.on.error(err);
  }

  private close(): void {
    this.state = 'done';
    clearTimeout(this.timer);
    this.letGo(false);
  }

  /** Lets go of the connection: kept for the next request when `keep`, else closed. */
  private letGo(keep: boolean): void {
    const c = this.conn;
    this.conn = undefined;
    this.socket = undefined;
    if (!c) return;
    c.owner = undefined;
    if (keep && this.opts.keepAlive) this.opts.keepAlive.give(c);
    else c.drop();
  }

  /** The socket's reads, errors and ends, while this request has its connection. */
  onRead(c: Conn, n: number): boolean {
    if (c !== this.conn) return false;
    return this.read(c.buf, n);
  }

  onSocketError(c: Conn, err: Error): void {
    if (c !== this.conn) return;
    if (this.retryFresh()) return;
    this.destroy(err);
  }

  onSocketEnd(c: Conn): void {
    if (c === this.conn && !this.retryFresh()) this.ended();
  }

  /**
   * A kept connection the server closed before answering: ask again on a new one (once, as
   * the request was not seen), rather than fail.
   */
  private retryFresh(): boolean {
    if (!this.keptUnanswered || this.state !== 'head' || this.head !== '') return false;
    this.letGo(false);
    clearTimeout(this.timer);
    this.keptUnanswered = false;
    this.request(true);
    return true;
  }

  private request(noReuse = false): void {
    const u = this.url;
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      this.destroy(new HttpRequestError('HTTP_BAD_REQUEST', `${u.protocol} URLs are not fetched`));
      return;
    }
    const pool = this.opts.keepAlive;
    let text = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: otaab-agent\r\nAccept: */*\r\nConnection: ${pool ? 'keep-alive' : 'close'}\r\n`;
    for (const [name, value] of Object.entries(this.headers)) {
      if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) {
        this.destroy(new HttpRequestError('HTTP_BAD_REQUEST', `header ${JSON.stringify(name)} has characters a header cannot carry`));
        return;
      }
      text += `${name}: ${value}\r\n`;
    }
    text += '\r\n';

    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const secure = u.protocol === 'https:';
    const port = Number(u.port) || (secure ? 443 : 80);
    const key = `${u.protocol}//${host}:${port}`;
    const kept = pool && !noReuse ? pool.take(key) : undefined;
    const conn = kept ?? new Conn(key, pool);
    conn.owner = this;
    this.conn = conn;
    this.keptUnanswered = kept !== undefined;
    this.reusable = false;
    let socket: Socket;
    if (kept) socket = kept.socket;
    else {
      socket = conn.open((onread) => {
        // Node has read a TLS socket's decrypted bytes into `onread`'s buffer since 15.1; its
        // types name the option for net only.
        const tlsOptions: Tls.ConnectionOptions & { onread: typeof onread } = { host, port, onread, ALPNProtocols: ['http/1.1'], ...(isIP(host) ? {} : { servername: host }), ...(this.opts.ca ? { ca: this.opts.ca } : {}) };
        return secure ? tls().connect(tlsOptions) : netConnect({ host, port, onread });
      });
    }
    this.socket = socket;
    this.state = 'head';
    this.head = '';
    this.awaiting = kept ? 'response' : 'connect';
    this.timer = setTimeout(() => {
      if (this.socket === socket) this.destroy(new HttpRequestError('HTTP_TIMEOUT', `no answer to GET ${u.href} within ${this.opts.timeoutMs} ms (awaiting ${this.awaiting})`, this.awaiting));
    }, this.opts.timeoutMs);
    if (!kept) {
      socket.once('connect', () => {
        if (this.socket !== socket) return;
        if (secure) this.awaiting = 'secureConnect';
        else this.awaiting = 'response';
      });
      socket.once('secureConnect', () => {
        if (this.socket === socket) this.awaiting = 'response';
      });
    }
    socket.write(text, 'latin1');
    if (this.paused) socket.pause();
    else if (kept) socket.resume();
  }

  /** The peer closed the connection. */
  private ended(): void {
    if (this.state === 'to-close') {
      this.finish();
      return;
    }
    const where = this.state === 'head' ? 'before the answer' : this.state === 'length' ? `with ${this.left} bytes of the body still to come` : 'inside a chunked body';
    this.destroy(new HttpRequestError('HTTP_CLOSED', `the connection to ${this.url.host} closed ${where}`));
  }

  /**
   * The answer is complete. Its connection goes back to the KeepAlive when the answer allows it
   * and nothing came after its end (`leftover`: bytes no request asked for); else it closes.
   */
  private finish(leftover = false): void {
    this.state = 'done';
    clearTimeout(this.timer);
    this.letGo(this.reusable && !leftover);
    this.on.end();
  }

  /** The socket read `n` bytes into `buf`. Returns false to pause it. */
  private read(buf: Buffer, n: number): boolean {
    const data = buf.subarray(0, n);
    const socket = this.socket;
    if (n > 0) this.keptUnanswered = false;
    let at = 0;
    while (at < n) {
      // Ended, failed, or redirected: the rest of this read is not the request's now.
      if (this.socket !== socket) return false;
      switch (this.state) {
        case 'done':
          return false;
        case 'head':
          at = this.readHead(data, at);
          // An answer without a body (204, 304, Content-Length: 0) ends with its head.
          if (this.socket === socket && (this.state as State) === 'length' && this.left === 0) this.finish(at < n);
          break;
        case 'to-close':
          this.on.body(at === 0 ? data : data.subarray(at));
          at = n;
          break;
        case 'length':
        case 'chunk-data': {
          const k = Math.min(this.left, n - at);
          this.on.body(data.subarray(at, at + k));
          at += k;
          this.left -= k;
          if (this.left === 0) {
            if (this.state === 'length') this.finish(at < n);
            else this.state = 'chunk-end';
          }
          break;
        }
        default:
          at = this.readLine(data, at);
      }
    }
    return !this.paused && this.state !== 'done';
  }

  /** Status line and headers; what follows the blank line is the body's. */
  private readHead(data: Buffer, at: number): number {
    const before = this.head.length;
    this.head += data.toString('latin1', at);
    const blank = this.head.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (blank < 0) {
      if (this.head.length > MAX_HEAD) this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} sent more than ${MAX_HEAD} bytes of head`));
      return data.length;
    }
    const used = at + blank + 4 - before;
    const text = this.head.slice(0, blank);
    this.head = '';
    this.answer(text);
    return used;
  }

  private answer(text: string): void {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (!m) {
      this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} answered ${JSON.stringify((lines[0] ?? '').slice(0, 80))}, not an HTTP/1.1 status line`));
      return;
    }
    const status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (colon <= 0 || !TOKEN.test(name)) {
        this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} sent a header line ${JSON.stringify(line.slice(0, 80))}`));
        return;
      }
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    // 100 Continue, 103 Early Hints: another head follows.
    if (status >= 100 && status < 200) return;
    clearTimeout(this.timer);
    const location = headers.location;
    if (REDIRECT.has(status) && location !== undefined) {
      this.redirect(location);
      return;
    }
    // Where the body ends: nowhere (204, 304), at a zero-size chunk, after Content-Length
    // bytes, or when the server closes the connection.
    const length = headers['content-length'];
    let left = 0;
    let body: State = 'length';
    if (status === 204 || status === 304) body = 'length';
    else if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) body = 'chunk-size';
    else if (length === undefined) body = 'to-close';
    else if (/^\d+$/.test(length)) left = Number(length);
    else {
      this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} sent Content-Length ${JSON.stringify(length)}`));
      return;
    }
    this.state = body;
    this.left = left;
    this.reusable = m[1] === '1' && body !== 'to-close' && !/\bclose\b/i.test(headers.connection ?? '');
    // The handler may destroy the request (an answer it refuses); one without a body is
    // finished by the caller (read), which knows whether bytes followed it.
    this.on.answer({ status, headers, url: this.url.href, redirected: this.redirects > 0 });
  }

  private redirect(location: string): void {
    let next: URL;
    try {
      next = new URL(location, this.url);
    } catch {
      this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} redirected to ${JSON.stringify(location.slice(0, 200))}, not a URL`));
      return;
    }
    if (++this.redirects > MAX_REDIRECTS) {
      this.destroy(new HttpRequestError('HTTP_REDIRECTS', `more than ${MAX_REDIRECTS} redirects, the last to ${next.href}`));
      return;
    }
    // The redirect's own body is not read: its connection is closed, not kept.
    this.letGo(false);
    if (next.origin !== this.url.origin) {
      delete this.headers.authorization;
      delete this.headers.cookie;
    }
    for (const name of this.opts.dropOnRedirect ?? []) delete this.headers[name];
    this.url = next;
    this.request();
  }

  /** A chunk-size line, the CRLF after a chunk's data, or a trailer line. */
  private readLine(data: Buffer, at: number): number {
    const lf = data.indexOf(10, at);
    const end = lf < 0 ? data.length : lf;
    this.line += data.toString('latin1', at, end);
    if (lf < 0) {
      if (this.line.length > 4096) this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} sent a chunk line of more than 4096 bytes`));
      return data.length;
    }
    const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
    this.line = '';
    if (this.state === 'chunk-end') {
      if (line !== '') this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} sent no line end after a chunk`));
      else this.state = 'chunk-size';
    } else if (this.state === 'trailers') {
      if (line === '') this.finish(lf + 1 < data.length);
    } else {
      const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
      if (!size) this.destroy(new HttpRequestError('HTTP_BAD_ANSWER', `${this.url.host} sent a chunk size ${JSON.stringify(line.slice(0, 40))}`));
      else {
        this.left = parseInt(size[1]!, 16);
        this.state = this.left === 0 ? 'trailers' : 'chunk-data';
      }
    }
    return lf + 1;
  }
}
