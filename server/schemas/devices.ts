/** Schemas of the device routes: enrollment, check-in, reports, fleet views, rollback requests. */
import { ATTRIBUTES, CHANNEL, COMPATIBLE, DEVICE_ID, NO_QUERY, PRODUCT, TAG, TIME, VERSION, nullable, object, responses, text, type Schema } from './common.js';

const STATES = ['idle', 'downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed', 'rolling-back', 'rolled-back', 'failed'];
const STATE = { type: 'string', enum: STATES };
const NAME = { type: 'string', minLength: 1, maxLength: 128 };
const idParams = object({ id: DEVICE_ID });
const str = { type: 'string' };
const strOrNull = { type: ['string', 'null'] };

/** POST /v1/devices/enroll. */
export const enrollSchema: Schema = {
  summary: 'Enroll a device and get its own token and the server key',
  querystring: NO_QUERY,
  body: object({ id: DEVICE_ID, compatible: COMPATIBLE, product: PRODUCT, channel: CHANNEL, replace: { type: 'boolean' } }, ['product', 'channel', 'replace']),
  response: responses({ 201: object({ id: DEVICE_ID, token: str, serverKey: str, channel: CHANNEL, compatible: COMPATIBLE }) }),
};

/** POST /v1/devices/:id/checkin: shared/protocol CheckinRequest in, SignedEnvelope out. */
export const checkinSchema: Schema = {
  summary: 'Check in: record the device state and get a server-signed directive',
  params: idParams,
  querystring: NO_QUERY,
  body: object(
    {
      nonce: { type: 'string', pattern: '^[0-9a-f]{32,128}$' },
      slot: { type: 'string', minLength: 1, maxLength: 64 },
      version: { anyOf: [VERSION, { type: 'null' }] },
      state: STATE,
      transaction: object({ id: NAME, version: VERSION, state: STATE }),
      attributes: ATTRIBUTES,
    },
    ['transaction', 'attributes'],
  ),
  response: responses({ 200: object({ payload: str, signature: str }) }),
};

/** POST /v1/devices/:id/reports: shared/protocol Report. */
export const reportSchema: Schema = {
  summary: 'Report transaction progress or outcome; a repeated report id is acknowledged, not stored twice',
  params: idParams,
  querystring: NO_QUERY,
  body: object(
    {
      id: NAME,
      transaction: NAME,
      version: VERSION,
      state: STATE,
      outcome: { type: 'string', enum: ['success', 'failure'] },
      reason: text(1024),
      // Byte counts: a JavaScript number stays exact up to 2^53, and SQLite's INTEGER holds it.
      progress: object({ bytes: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, total: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } }),
      // Free-form by contract (health-check results, output excerpts); bounded by the body limit.
      details: { type: 'object' },
      at: TIME,
    },
    ['outcome', 'reason', 'progress', 'details'],
  ),
  response: responses({ 200: object({ id: NAME, duplicate: { type: 'boolean' } }) }),
};

const device = object({
  id: DEVICE_ID,
  compatible: COMPATIBLE,
  product: nullable(PRODUCT),
  channel: CHANNEL,
  tags: { type: 'array', items: TAG },
  attributes: ATTRIBUTES,
  enrolled: TIME,
  lastSeen: strOrNull,
  slot: strOrNull,
  version: strOrNull,
  state: strOrNull,
  transaction: nullable(object({ id: str, version: str, state: str })),
  lastOutcome: nullable(object({ outcome: str, reason: strOrNull, version: str, at: str })),
  pendingRollback: strOrNull,
});

const rollback = object({
  id: str,
  device: DEVICE_ID,
  requestedBy: str,
  note: strOrNull,
  requested: TIME,
  delivered: strOrNull,
  outcome: { anyOf: [{ type: 'string', enum: ['success', 'failure', 'refused'] }, { type: 'null' }] },
  outcomeReason: strOrNull,
});

/** GET /v1/devices. */
export const listDevicesSchema: Schema = {
  summary: 'The fleet, filtered by product, channel, tags (tag=a,b: all of them), attributes (attr=site=lyon,hardware=rev-c), version, compatible',
  querystring: object(
    { product: PRODUCT, channel: CHANNEL, tag: text(1024), attr: text(2048), version: VERSION, compatible: COMPATIBLE },
    ['product', 'channel', 'tag', 'attr', 'version', 'compatible'],
  ),
  response: responses({ 200: object({ devices: { type: 'array', items: device } }) }),
};

/** GET /v1/devices/:id. */
export const deviceSchema: Schema = {
  summary: 'One device with its transactions, reports and rollback requests',
  params: idParams,
  querystring: NO_QUERY,
  response: responses({
    200: object({
      device,
      transactions: {
        type: 'array',
        items: object({ id: str, version: str, state: str, outcome: strOrNull, reason: strOrNull, started: str, updated: str }),
      },
      reports: {
        type: 'array',
        items: object({
          id: str,
          transaction: str,
          version: str,
          state: str,
          outcome: strOrNull,
          reason: strOrNull,
          progress: nullable(object({ bytes: { type: 'integer' }, total: { type: 'integer' } })),
          details: nullable({ type: 'object', additionalProperties: true }),
          at: str,
          received: str,
        }),
      },
      rollbacks: { type: 'array', items: rollback },
    }),
  }),
};

/** POST /v1/devices/:id/rollback. */
export const rollbackSchema: Schema = {
  summary: 'Ask a device to roll back at its next check-in (delivered once)',
  params: idParams,
  querystring: NO_QUERY,
  body: object({ note: text(1024) }, ['note']),
  response: responses({ 202: rollback }),
};

/** PUT and DELETE /v1/devices/:id/tags/:tag. */
export const tagSchema = (summary: string): Schema => ({
  summary,
  params: object({ id: DEVICE_ID, tag: TAG }),
  querystring: NO_QUERY,
  response: responses({ 200: object({ id: DEVICE_ID, tags: { type: 'array', items: TAG } }) }),
});

/** POST /v1/devices/tags. */
export const bulkTagSchema: Schema = {
  summary: 'Add and remove tags on many devices at once (all or nothing)',
  querystring: NO_QUERY,
  body: object(
    {
      devices: { type: 'array', items: DEVICE_ID, minItems: 1, maxItems: 10000 },
      add: { type: 'array', items: TAG, maxItems: 16 },
      remove: { type: 'array', items: TAG, maxItems: 16 },
    },
    ['add', 'remove'],
  ),
  response: responses({ 200: object({ devices: { type: 'array', items: object({ id: DEVICE_ID, tags: { type: 'array', items: TAG } }) } }) }),
};
