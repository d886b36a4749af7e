/**
 * Releases: upload (streamed, verified, stored content-addressed, recorded) and list.
 * The octet-stream parser below hands the raw request stream to the handler: a bundle is
 * never buffered in memory, whatever its size.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Readable } from 'node:stream';
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { listSchema, releaseSchema, uploadSchema } from '../schemas/releases.js';
import { receiveBundle } from '../storage/receive.js';

/** The release routes. */
export const releaseRoutes: FastifyPluginAsync = async (app) => {
  // Scoped to this plugin: other routes keep refusing octet-stream bodies with 415. Refusals
  // happen in the handler, not here: a parser error makes fastify close the connection under
  // the client still sending, which then sees a reset instead of the answer.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.post('/releases', { schema: uploadSchema, config: { roles: ['ops'] } }, async (req, reply) => {
    const body = req.body as Readable | undefined;
    if (!body || typeof (body as Partial<Readable>)[Symbol.asyncIterator] !== 'function') {
      throw new OtaError('REQUEST_MEDIA_TYPE', 'POST /v1/releases: send the bundle as Content-Type: application/octet-stream');
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > app.config.maxBundleSize) {
      // Nothing read: node discards the body while the connection stays open for the answer.
      throw new OtaError('UPLOAD_TOO_LARGE', `upload of ${declared} bytes: larger than the server's maxBundleSize of ${app.config.maxBundleSize}`);
    }
    let got;
    try {
      got = await receiveBundle(body, { store: app.bundles, keyring: app.keyring, maxSize: app.config.maxBundleSize, source: 'upload' });
    } catch (err) {
      // The rest of the body was drained if it could be; if not, this connection is done.
      if (!req.raw.complete) void reply.header('connection', 'close');
      req.log.warn({ code: isOtaError(err) ? err.code : undefined, by: req.identity?.id }, `upload refused: ${errorMessage(err)}`);
      throw err;
    }
    const m = got.report.bundle.manifest;
    const { store, bundles } = app;
    try {
      if (store.releases.exists(m.product, m.version)) throw new OtaError('RELEASE_EXISTS', `release ${m.product} ${m.version}: already stored; versions are immutable`);
      // Storage first, record second: a crash in between leaves an unrecorded file that the
      // next start sweeps, never a record without its bundle.
      await got.upload.commit(got.sha256);
    } catch (err) {
      await got.upload.discard();
      if (!isOtaError(err, 'RELEASE_EXISTS') && !store.releases.bundle(got.sha256)) await bundles.remove(got.sha256).catch(() => undefined);
      throw err;
    }
    try {
      store.releases.insert({
        version: m.version,
        sha256: got.sha256,
        size: got.size,
        product: m.product,
        compatible: m.compatible,
        manifest: got.report.bundle.manifestBytes,
        signature: got.report.bundle.signature,
        signer: got.report.bundle.signer.fingerprint,
        created: m.created,
      });
    } catch (err) {
      // A concurrent upload of the same version won; keep the file only if a release uses it.
      if (!store.releases.bundle(got.sha256)) await bundles.remove(got.sha256);
      throw err;
    }
    req.log.info({ product: m.product, version: m.version, sha256: got.sha256, size: got.size, signer: got.report.bundle.signer.fingerprint }, 'release stored');
    return reply.code(201).send({ version: m.version, sha256: got.sha256, size: got.size, product: m.product, compatible: m.compatible });
  });

  app.get<{ Querystring: { product?: string } }>('/releases', { schema: listSchema, config: { roles: ['ops', 'technician'] } }, async (req) => ({
    releases: app.store.releases.list(req.query.product ?? null),
    channels: app.store.releases.channels().filter((c) => req.query.product === undefined || c.product === req.query.product),
  }));

  app.get<{ Params: { product: string; version: string } }>(
    '/products/:product/releases/:version',
    { schema: releaseSchema, config: { roles: ['ops', 'technician'] } },
    async (req) => {
      const { product, version } = req.params;
      const release = app.store.releases.get(product, version);
      if (!release) throw new OtaError('RELEASE_NOT_FOUND', `release ${product} ${version}: not stored`);
      return { release, rollouts: app.store.rollouts.list(product).filter((r) => r.version === version) };
    },
  );
};
