/** Answers every error, and every unknown route, as `{ error, message }` (DESIGN §8). */
import { apiError, toApiError } from '../http/api-error.js';
import { drainBody } from '../http/drain.js';
import { unencapsulated } from '../plugin.js';

/** The error plugin. */
export const errorsPlugin = unencapsulated('otaab-errors', async (app) => {
  app.setErrorHandler(async (err, req, reply) => {
    const e = toApiError(err);
    if (e.status >= 500) req.log.error({ err }, `${req.method} ${req.url} failed`);
    else req.log.debug({ code: e.code }, e.message);
    // A JSON body refused for its size was not read: read and drop the rest, so the client
    // still sending gets this answer rather than a reset (drain.ts). When it ended, the
    // connection can stay open.
    if (e.code === 'REQUEST_TOO_LARGE' && (await drainBody(req.raw))) reply.removeHeader('connection');
    return reply.code(e.status).send({ error: e.code, message: e.message });
  });
  app.setNotFoundHandler((req, reply) => {
    const e = apiError('ROUTE_NOT_FOUND', `${req.method} ${req.url}: no such route (see /v1/openapi.json)`);
    return reply.code(e.status).send({ error: e.code, message: e.message });
  });
});
