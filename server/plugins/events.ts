/**
 * The console's live updates: decorates the app with `events`, the hub of its server-sent event
 * streams (server/events/hub.ts, fed by the database's change cursor), and lets a change that a
 * person made through this instance show at once. Register it after the auth plugin.
 */
import { errorMessage } from '../../shared/errors.js';
import { cursorReader } from '../events/cursor.js';
import { EventHub } from '../events/hub.js';
import { unencapsulated } from '../plugin.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The server-sent event streams of this instance. */
    events: EventHub;
  }
}

/** The events plugin. */
export const eventsPlugin = unencapsulated('otaab-events', async (app) => {
  const hub = new EventHub(cursorReader(app.store.db), undefined, (err) => app.log.warn({ err }, `events: the change cursor could not be read (${errorMessage(err)})`));
  app.decorate('events', hub);
  // A person's change (a rollout started, paused; a rollback asked; a tag set) shows in the
  // streams at once. Devices' check-ins and reports are many: the next poll picks them up.
  app.addHook('onResponse', async (req, reply) => {
    const role = req.identity?.role;
    if ((role === 'ops' || role === 'technician') && req.method !== 'GET' && req.method !== 'HEAD' && reply.statusCode < 400) hub.nudge();
  });
  // Before the server waits for its connections to end: open streams would hold it forever.
  app.addHook('preClose', async () => hub.close());
});
