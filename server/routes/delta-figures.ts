/**
 * GET /v1/products/:product/releases/:version/delta: `delta-report` figures of a release against
 * the earlier releases of its product (server/views/delta-figures.ts computes and keeps them).
 */
import type { FastifyPluginAsync } from 'fastify';
import { OtaError } from '../../shared/errors.js';
import { deltaFiguresSchema } from '../schemas/delta-figures.js';
import { storedBundle } from '../storage/report-bundle.js';
import { DeltaFigures, previousReleases } from '../views/delta-figures.js';

/** Earlier releases compared when the query names none. */
const PREVIOUS = 3;

/** Whether a signed manifest (base64, as an offer holds it) gives an image a chunk index. */
function indexed(manifestBase64: string): boolean {
  const m = JSON.parse(Buffer.from(manifestBase64, 'base64').toString('utf8')) as { modules?: { type?: string; index?: unknown }[] };
  return (m.modules ?? []).some((x) => x.type === 'image' && x.index !== undefined);
}

/** The delta figures route. */
export const deltaFiguresRoutes: FastifyPluginAsync = async (app) => {
  // Read through the bundle store (local or S3); a bundle no release records is not there.
  const figures = new DeltaFigures(app.keyring, (sha256) => {
    const stored = app.store.releases.bundle(sha256);
    if (!stored) throw new OtaError('BUNDLE_NOT_FOUND', `bundle ${sha256}: no release records it`);
    return storedBundle(app.bundles, sha256, stored.size);
  });

  app.get<{ Params: { product: string; version: string }; Querystring: { from?: string; previous?: string } }>(
    '/products/:product/releases/:version/delta',
    { schema: deltaFiguresSchema, config: { roles: ['ops', 'technician'] } },
    async (req) => {
      const { product, version } = req.params;
      const target = await app.store.releases.get(product, version);
      if (!target) throw new OtaError('RELEASE_NOT_FOUND', `release ${product} ${version}: not stored`);
      const offer = await app.store.releases.offer(product, version);
      const out = { product, version, sha256: target.sha256, indexed: indexed(offer.manifest) };
      // A device downloads a bundle without an index whole: there is nothing to compute.
      if (!out.indexed) return { ...out, deltas: [] };
      const all = await app.store.releases.list(product);
      let earlier = previousReleases(target, all, req.query.from !== undefined ? all.length : Number(req.query.previous ?? PREVIOUS));
      if (req.query.from !== undefined) {
        earlier = earlier.filter((r) => r.version === req.query.from);
        if (earlier.length === 0) throw new OtaError('RELEASE_NOT_FOUND', `release ${product} ${req.query.from}: not stored, or not an earlier release for the same device types as ${version}`);
      }
      const deltas = [];
      for (const from of earlier) deltas.push(await figures.figure(from, target));
      return { ...out, deltas };
    },
  );
};
