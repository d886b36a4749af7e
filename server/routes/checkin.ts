/** The device's own routes: check-in (signed directive) and reports. */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { CheckinRequest, Report } from '../../shared/protocol.js';
import { CheckinService } from '../checkin.js';
import { checkinSchema, reportSchema } from '../schemas/devices.js';

/** Scheme, host and port the device used to reach us: bundle URLs must work from where it stands. */
function requestBase(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`;
}

/** The device routes. */
export const checkinRoutes: FastifyPluginAsync = async (app) => {
  const checkins = new CheckinService(
    app.store,
    app.signer,
    app.config,
    (d) => app.metrics.checkin(d),
    (err) => app.log.error({ err }, 'rollout evaluation after a check-in failed; a later check-in evaluates it again'),
  );

  app.post<{ Params: { id: string }; Body: CheckinRequest }>(
    '/devices/:id/checkin',
    { schema: checkinSchema, config: { roles: ['device'], ownDevice: true } },
    async (req) => checkins.answer(req.params.id, req.body, requestBase(req)),
  );

  app.post<{ Params: { id: string }; Body: Report }>(
    '/devices/:id/reports',
    { schema: reportSchema, config: { roles: ['device'], ownDevice: true } },
    async (req) => {
      const fresh = app.store.reports.add(req.params.id, req.body);
      if (fresh) app.metrics.report(req.body);
      if (fresh && req.body.outcome) {
        req.log.info({ device: req.params.id, version: req.body.version, outcome: req.body.outcome, reason: req.body.reason }, 'transaction ended');
      }
      return { id: req.body.id, duplicate: !fresh };
    },
  );
};
