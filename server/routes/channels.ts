/** Channels: each points at one stored release; devices follow theirs. */
import type { FastifyPluginAsync } from 'fastify';
import { publishSchema } from '../schemas/releases.js';

/** The channel routes. */
export const channelRoutes: FastifyPluginAsync = async (app) => {
  app.put<{ Params: { channel: string }; Body: { version: string } }>(
    '/channels/:channel',
    { schema: publishSchema, config: { roles: ['ops'] } },
    async (req) => {
      const now = new Date();
      const { channel } = req.params;
      const { version } = req.body;
      const previous = app.store.transaction(() => app.store.releases.publish(channel, version, now));
      req.log.info({ channel, version, previous }, 'channel published');
      return { channel, version, previous, updated: now.toISOString() };
    },
  );
};
