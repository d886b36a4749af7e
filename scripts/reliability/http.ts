/**
 * A raw HTTP/1.1 client for hostile requests, on a plain TCP socket: exact request lines (no
 * URL normalisation, no header checks), bodies with a Content-Length or chunked, and the
 * server's answer read as soon as it comes, even before the body was sent (a 413 on an
 * oversize body), where an HTTP client library may report only EPIPE or a reset.
 */
import { connect } from 'node:net';

/** What came back. */
export interface RawAnswer {
  /** HTTP status, or 0 when the connection ended without an answer. */
  status: number;
  /** The first 64 KiB of the body. */
  body: string;
  /** The `error` code of an error body, when the body is one. */
  code: string | undefined;
  /** The socket error seen, if any (after an answer, normal for a refused body). */
  socketError: string | undefined;
}

/** A request. */
export interface RawRequest {
  method: string;
  /** Sent as is in the request line. */
  path: string;
  headers?: Record<string, string>;
  /** A body with a Content-Length (Buffer or string), or chunks sent chunked. */
  body?: Buffer | string | (() => Iterable<Buffer>);
}

const KEEP = 65536;

/** Parses what the server sent: status line, headers, body (de-chunked when chunked). */
export function parseAnswer(raw: Buffer): Omit<RawAnswer, 'socketError'> {
  const end = raw.indexOf('\r\n\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw.subarray(0, Math.min(raw.length, 64)).toString('latin1'));
  if (!m || end === -1) return { status: 0, body: '', code: undefined };
  const head = raw.subarray(0, end).toString('latin1');
  let body = raw.subarray(end + 4);
  if (/^transfer-encoding:\s*chunked/im.test(head)) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const nl = body.indexOf('\r\n', at);
      if (nl === -1) break;
      const size = parseInt(body.subarray(at, nl).toString('latin1'), 16);
      if (!Number.isFinite(size) || size === 0) break;
      parts.push(body.subarray(nl + 2, nl + 2 + size));
      at = nl + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  const text = body.subarray(0, KEEP).toString('utf8');
  let code: string | undefined;
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (typeof j.error === 'string') code = j.error;
  } catch {
    // Not a JSON error body (a bundle, or Node's own answer to a broken request line).
  }
  return { status: Number(m[1]), body: text, code };
}

/**
 * True once the whole answer arrived: the connection stays open (keep-alive), so that the
 * server can drain a body it refused instead of resetting the connection under its own answer.
 */
function answerComplete(kept: Buffer, size: number, tail: Buffer): boolean {
  const end = kept.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = kept.subarray(0, end).toString('latin1');
  if (/^HTTP\/1\.[01] (1\d\d|204|304)/.test(head)) return /^HTTP\/1\.[01] (204|304)/.test(head);
  const length = /^content-length:\s*(\d+)/im.exec(head);
  if (length) return size >= end + 4 + Number(length[1]);
  if (/^transfer-encoding:\s*chunked/im.test(head)) return tail.toString('latin1').endsWith('\r\n0\r\n\r\n') || tail.toString('latin1') === '0\r\n\r\n';
  return false;
}

/** Sends one request on a fresh connection to `base` (http://host:port) and reads the answer. */
export function rawRequest(base: string, req: RawRequest, timeoutMs = 60_000): Promise<RawAnswer> {
  const url = new URL(base);
  const fixed = typeof req.body === 'string' || Buffer.isBuffer(req.body) ? Buffer.from(req.body) : undefined;
  const chunked = typeof req.body === 'function';
  const headers: Record<string, string> = {
    host: url.host,
    ...(fixed ? { 'content-length': String(fixed.length) } : {}),
    ...(chunked ? { 'transfer-encoding': 'chunked' } : {}),
    ...req.headers,
  };
  const head = `${req.method} ${req.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const got: Buffer[] = [];
    let size = 0;
    let tail = Buffer.alloc(0);
    let socketError: string | undefined;
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseAnswer(Buffer.concat(got)), socketError });
    };
    const timer = setTimeout(() => {
      socketError ??= 'timeout';
      finish();
    }, timeoutMs);
    socket.on('data', (c: Buffer) => {
      // Keep the head and the start of the body; a bundle download needs no more.
      if (size < KEEP * 2) got.push(c);
      size += c.length;
      tail = Buffer.concat([tail, c]).subarray(-16);
      if (answerComplete(Buffer.concat(got), size, tail)) finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      socketError ??= err.code ?? err.message;
    });
    socket.on('close', finish);
    socket.on('end', finish);
    const write = async (): Promise<void> => {
      const put = (b: Buffer | string): Promise<void> | undefined =>
        socket.destroyed ? undefined : socket.write(b) ? undefined : new Promise<void>((r) => {
          socket.once('drain', r);
          socket.once('close', r);
        });
      await put(head);
      if (fixed) await put(fixed);
      if (typeof req.body === 'function') {
        for (const c of req.body()) {
          if (socket.destroyed) return;
          await put(`${c.length.toString(16)}\r\n`);
          await put(c);
          await put('\r\n');
        }
        await put('0\r\n\r\n');
      }
    };
    socket.once('connect', () => void write());
  });
}
