/**
 * GET /v1/events: server-sent events for the console (text/event-stream). An `ops` or
 * `technician` token opens a stream; it gets `ready`, then `change` events naming the topics
 * that moved (`{"topics": ["reports", "rollouts"]}`), each with the change cursor as its id, and
 * a comment line every 15 s. A browser that reconnects with Last-Event-ID gets at once the
 * topics that moved while it was away. The console refreshes the page shown on each event and
 * falls back to polling while the stream is down.
 */
import type { FastifyPluginAsync } from 'fastify';
import { errorMessage } from '../../shared/errors.js';
import { parseCursorId } from '../events/cursor.js';
import { eventsSchema } from '../schemas/events.js';

/** The events route (the hub is the events plugin's). */
export const eventRoutes: FastifyPluginAsync = async (app) => {
  const hub = app.events;
  app.get('/events', { schema: eventsSchema, config: { roles: ['ops', 'technician'] } }, async (req, reply) => {
    const lastId = req.headers['last-event-id'];
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx: pass each event on as it comes instead of buffering the answer.
      'x-accel-buffering': 'no',
      // A stream is one connection: when it ends (the server closing), the socket goes with it,
      // instead of lingering as an idle keep-alive connection the server's close waits for.
      connection: 'close',
    });
    res.flushHeaders();
    let closed = false;
    const client = {
      write: (text: string) => void (closed || res.write(text)),
      end: () => {
        // Once the last bytes are out, the socket goes: a client that keeps it open (as an
        // aborted fetch may) must not hold the server's close.
        if (!closed) res.end(() => res.socket?.destroy());
        closed = true;
      },
    };
    let unsubscribe: (() => void) | null = null;
    res.on('close', () => {
      closed = true;
      unsubscribe?.();
    });
    try {
      unsubscribe = await hub.subscribe(client, parseCursorId(typeof lastId === 'string' ? lastId : undefined));
      if (closed) unsubscribe();
    } catch (err) {
      req.log.warn({ err }, `events: a stream could not start (${errorMessage(err)})`);
      res.end(`event: error\ndata: ${JSON.stringify({ message: errorMessage(err) })}\n\n`);
    }
  });
};
