/**
 * Lingering close for a refused request body. When a JSON body is over `maxJsonBody`, fastify
 * answers 413 before reading it and closes the connection; a client still sending then meets
 * a reset (EPIPE) and never reads the 413. Like nginx's lingering close, the server reads and
 * drops the rest of the body first, up to a bound in bytes and in time, so the client gets the
 * answer, and the connection can stay open when the body ended.
 */
import type { IncomingMessage } from 'node:http';

/** At most this many bytes of a refused body are read and dropped. */
export const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** For at most this long. */
export const DRAIN_MAX_MS = 10_000;

/** Reads and drops the rest of `req`'s body; true when it ended within the bounds. */
export function drainBody(req: IncomingMessage, maxBytes = DRAIN_MAX_BYTES, maxMs = DRAIN_MAX_MS): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  if (req.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (ended: boolean): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      if (!ended) req.pause();
      resolve(ended);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > maxBytes) finish(false);
    };
    const onEnd = (): void => finish(true);
    const onClose = (): void => finish(req.complete);
    const timer = setTimeout(() => finish(false), maxMs);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.once('error', onClose);
    req.resume();
  });
}
