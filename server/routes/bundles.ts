/**
 * Bundle download, streamed from the bundle store (a file, or a ranged GET of the object
 * store) with HTTP Range so a device on a flaky link resumes where it stopped. Bundles are
 * content-addressed and immutable: the sha256 is a strong ETag. With bundleDownload
 * `presigned` or `public` the answer is instead a 302 to a presigned URL or the CDN: bundles
 * are signed, so any origin is safe, and every request (each resume, each delta range) comes
 * here first and gets a fresh URL.
 */
import type { FastifyPluginAsync } from 'fastify';
import { OtaError } from '../../shared/errors.js';
import { ifRangeHolds, planRange } from '../http/range.js';
import { bundleSchema } from '../schemas/bundles.js';
import { ServedCounter, servedRoute } from './bundle-served.js';

/** The bundle route. */
export const bundleRoutes: FastifyPluginAsync = async (app) => {
  const served = new ServedCounter(app.store);
  app.addHook('onClose', async () => served.close());
  servedRoute(app, served);
  app.get<{ Params: { sha256: string } }>('/bundles/:sha256', { schema: bundleSchema, config: { roles: ['device', 'ops'] } }, async (req, reply) => {
    const sha256 = req.params.sha256;
    const stored = app.store.releases.bundle(sha256);
    if (!stored) throw new OtaError('BUNDLE_NOT_FOUND', `bundle ${sha256}: no stored release has it`);
    const size = stored.size;
    const etag = `"${sha256}"`;
    const direct = await app.bundles.directUrl(sha256);
    if (direct !== null) {
      // Not cached: a presigned URL expires, and the device asks here again when it resumes.
      return reply.code(302).header('location', direct).header('cache-control', 'no-store').send();
    }
    reply.header('accept-ranges', 'bytes').header('etag', etag).header('cache-control', 'private, max-age=31536000, immutable');

    let plan = planRange(req.headers.range, size);
    const ifRange = req.headers['if-range'];
    if (plan.type !== 'full' && !ifRangeHolds(typeof ifRange === 'string' ? ifRange : undefined, etag)) plan = { type: 'full' };
    if (plan.type === 'unsatisfiable') {
      reply.code(416).header('content-range', `bytes */${size}`);
      throw new OtaError('RANGE_NOT_SATISFIABLE', `bundle ${sha256}: range "${req.headers.range ?? ''}" is outside its ${size} bytes`);
    }

    const [start, end] = plan.type === 'partial' ? [plan.start, plan.end] : [0, size - 1];
    let stream;
    try {
      stream = await app.bundles.read(sha256, start, end);
    } catch (err) {
      req.log.error({ err, sha256 }, 'a recorded bundle cannot be read from storage');
      throw err;
    }
    if (plan.type === 'partial') reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
    reply.header('content-length', String(end - start + 1)).type('application/octet-stream');
    app.metrics.download(plan.type === 'partial', stream);
    served.count(sha256, plan.type === 'partial', stream);
    return reply.send(stream);
  });
};
