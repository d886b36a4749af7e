/**
 * Channels: each belongs to a product and points at one of its releases; devices follow theirs.
 * A publish is a one-phase rollout to the channel's devices (DESIGN §11): it supersedes the
 * channel's previous publish, and devices enrolled later join it at their check-in.
 */
import type { FastifyPluginAsync } from 'fastify';
import { startRollout } from '../rollout/start.js';
import { publishSchema } from '../schemas/releases.js';

/** The channel routes. */
export const channelRoutes: FastifyPluginAsync = async (app) => {
  app.put<{ Params: { channel: string }; Body: { product: string; version: string } }>(
    '/channels/:channel',
    { schema: publishSchema, config: { roles: ['ops'] } },
    async (req) => {
      const now = new Date();
      const { channel } = req.params;
      const { product, version } = req.body;
      const { store } = app;
      const { previous, rollout } = store.transaction(() => {
        const previous = store.releases.publish(product, channel, version, now);
        const rollout = startRollout(
          store,
          {
            product,
            version,
            kind: 'publish',
            target: { channel, tags: [], attributes: {} },
            phases: [{ percent: 100 }],
            successShare: 1,
            soakSeconds: 0,
            pauseFailures: null,
            pauseFailureShare: null,
            createdBy: req.identity?.id ?? 'unknown',
          },
          now,
        );
        return { previous, rollout: rollout.id };
      });
      req.log.info({ product, channel, version, previous, rollout }, 'channel published');
      return { product, channel, version, previous, rollout, updated: now.toISOString() };
    },
  );
};
