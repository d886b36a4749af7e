/** Schema of GET /v1/events (server-sent events; the OpenAPI document names the media type). */
import { NO_QUERY, responses, type Schema } from './common.js';

/** GET /v1/events. */
export const eventsSchema: Schema = {
  summary:
    'Server-sent events (text/event-stream): `ready`, then `change` events whose data names the topics that moved (`{"topics": ["reports", "rollouts", "devices", "rollbacks", "releases"]}`); ids are change cursors for Last-Event-ID',
  produces: ['text/event-stream'],
  querystring: NO_QUERY,
  response: responses({ 200: { type: 'string', description: 'the event stream' } }),
};
