/** Schemas of the release and channel routes. */
import { CHANNEL, COMPATIBLE, NO_QUERY, SHA256, TIME, VERSION, object, responses, type Schema } from './common.js';

const stored = {
  version: VERSION,
  sha256: SHA256,
  size: { type: 'integer' },
  product: { type: 'string' },
  compatible: { type: 'array', items: COMPATIBLE },
};

/** POST /v1/releases: the body is the bundle itself, streamed. */
export const uploadSchema: Schema = {
  summary: 'Upload a signed bundle; it is verified while it streams and stored only when whole and authentic',
  consumes: ['application/octet-stream'],
  querystring: NO_QUERY,
  response: responses({ 201: object(stored) }),
};

/** GET /v1/releases. */
export const listSchema: Schema = {
  summary: 'List releases and channels',
  querystring: NO_QUERY,
  response: responses({
    200: object({
      releases: {
        type: 'array',
        items: object({ ...stored, signer: { type: 'string' }, created: TIME, uploaded: TIME, channels: { type: 'array', items: CHANNEL } }),
      },
      channels: { type: 'array', items: object({ name: CHANNEL, version: VERSION, updated: TIME }) },
    }),
  }),
};

/** PUT /v1/channels/:channel. */
export const publishSchema: Schema = {
  summary: 'Point a channel at a stored release',
  params: object({ channel: CHANNEL }),
  querystring: NO_QUERY,
  body: object({ version: VERSION }),
  response: responses({ 200: object({ channel: CHANNEL, version: VERSION, previous: { type: ['string', 'null'] }, updated: TIME }) }),
};
