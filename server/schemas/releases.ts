/** Schemas of the release and channel routes. */
import { CHANNEL, COMPATIBLE, NO_QUERY, PRODUCT, SHA256, TIME, VERSION, object, responses, type Schema } from './common.js';
import { rollout } from './rollouts.js';

const stored = {
  version: VERSION,
  sha256: SHA256,
  size: { type: 'integer' },
  product: PRODUCT,
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
/** The fields of a stored release, as every route that lists releases answers them. */
export const releaseFields = { ...stored, signer: { type: 'string' }, created: TIME, uploaded: TIME, channels: { type: 'array', items: CHANNEL } };
const release = object(releaseFields);

export const listSchema: Schema = {
  summary: 'List releases and channels (of one product with ?product=)',
  querystring: object({ product: PRODUCT }, ['product']),
  response: responses({
    200: object({
      releases: { type: 'array', items: release },
      channels: { type: 'array', items: object({ product: PRODUCT, name: CHANNEL, version: VERSION, updated: TIME }) },
    }),
  }),
};

/** GET /v1/products/:product/releases/:version. */
export const releaseSchema: Schema = {
  summary: 'One release with its rollouts',
  params: object({ product: PRODUCT, version: VERSION }),
  querystring: NO_QUERY,
  response: responses({ 200: object({ release, rollouts: { type: 'array', items: rollout } }) }),
};

/** PUT /v1/channels/:channel. */
export const publishSchema: Schema = {
  summary: "Point a product's channel at one of its stored releases: a one-phase rollout to the channel's devices",
  params: object({ channel: CHANNEL }),
  querystring: NO_QUERY,
  body: object({ product: PRODUCT, version: VERSION }),
  response: responses({
    200: object({ product: PRODUCT, channel: CHANNEL, version: VERSION, previous: { type: ['string', 'null'] }, rollout: { type: 'string' }, updated: TIME }),
  }),
};
