/** Schemas of the rollout and maintenance-window routes. */
import { ATTRIBUTES, CHANNEL, DEVICE_ID, NO_QUERY, PRODUCT, TAG, TIME, VERSION, nullable, object, responses, type Schema } from './common.js';

const str = { type: 'string' };
const int = { type: 'integer' };
const ROLLOUT_ID = { type: 'string', pattern: '^ro_[0-9a-f]{16}$' };
const phase = { oneOf: [object({ percent: { type: 'number', exclusiveMinimum: 0, maximum: 100 } }), object({ count: { type: 'integer', minimum: 1 } })] };
const target = object({ channel: nullable(CHANNEL), tags: { type: 'array', items: TAG, maxItems: 16 }, attributes: ATTRIBUTES });
const counts = object({ members: int, success: int, failure: int, waiting: int, offered: int, installing: int });
const STATES = ['running', 'paused', 'completed', 'aborted', 'superseded'];

/** A rollout as every rollout route returns it. */
export const rollout: Schema = object({
  id: str,
  product: PRODUCT,
  version: VERSION,
  kind: { type: 'string', enum: ['staged', 'publish'] },
  target,
  phases: { type: 'array', items: phase },
  successShare: { type: 'number' },
  soakSeconds: int,
  pauseFailures: { type: ['integer', 'null'] },
  pauseFailureShare: { type: ['number', 'null'] },
  seed: int,
  state: { type: 'string', enum: STATES },
  phase: int,
  phaseOpened: TIME,
  acknowledgedFailures: int,
  reason: { type: ['string', 'null'] },
  createdBy: str,
  created: TIME,
  updated: TIME,
  counts: { type: 'array', items: counts },
  totals: counts,
});

/** POST /v1/rollouts. */
export const createRolloutSchema: Schema = {
  summary: 'Start a staged rollout of a release to a target, phase by phase',
  querystring: NO_QUERY,
  body: object(
    {
      product: PRODUCT,
      version: VERSION,
      channel: CHANNEL,
      tags: { type: 'array', items: TAG, maxItems: 16 },
      attributes: ATTRIBUTES,
      phases: { type: 'array', items: phase, minItems: 1, maxItems: 100 },
      successShare: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      soakSeconds: { type: 'integer', minimum: 0, maximum: 30 * 86400 },
      pauseFailures: { type: ['integer', 'null'], minimum: 1 },
      pauseFailureShare: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
      seed: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 },
    },
    ['channel', 'tags', 'attributes', 'phases', 'successShare', 'soakSeconds', 'pauseFailures', 'pauseFailureShare', 'seed'],
  ),
  response: responses({ 201: rollout }),
};

/** GET /v1/rollouts. */
export const listRolloutsSchema: Schema = {
  summary: 'List rollouts, newest first (of one product with ?product=)',
  querystring: object({ product: PRODUCT }, ['product']),
  response: responses({ 200: object({ rollouts: { type: 'array', items: rollout } }) }),
};

const idParams = object({ id: ROLLOUT_ID });

/** GET /v1/rollouts/:id. */
export const showRolloutSchema: Schema = {
  summary: "One rollout with its counts, its failures' reasons and its devices",
  params: idParams,
  querystring: NO_QUERY,
  response: responses({
    200: object({
      rollout,
      failures: { type: 'array', items: object({ reason: str, devices: int }) },
      devices: {
        type: 'array',
        items: object({ device: DEVICE_ID, phase: int, position: int, status: str, reason: { type: ['string', 'null'] }, updated: TIME }),
      },
    }),
  }),
};

/** POST /v1/rollouts/:id/{pause,resume,abort}. */
export const controlRolloutSchema = (what: string): Schema => ({
  summary: what,
  params: idParams,
  querystring: NO_QUERY,
  response: responses({ 200: rollout }),
});

const DAY = { type: 'string', enum: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] };
const WINDOW_NAME = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' };
const windowBody = {
  tag: TAG,
  days: { type: 'array', items: DAY, minItems: 1, maxItems: 7, uniqueItems: true },
  start: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' },
  durationMinutes: { type: 'integer', minimum: 1, maximum: 1440 },
  timeZone: { type: 'string', minLength: 1, maxLength: 64 },
};
const windowView = object({ name: WINDOW_NAME, ...windowBody, updated: TIME });

/** PUT /v1/windows/:name. */
export const putWindowSchema: Schema = {
  summary: 'Create or replace a maintenance window for the devices carrying a tag',
  params: object({ name: WINDOW_NAME }),
  querystring: NO_QUERY,
  body: object(windowBody),
  response: responses({ 200: windowView }),
};

/** GET /v1/windows. */
export const listWindowsSchema: Schema = {
  summary: 'List maintenance windows',
  querystring: NO_QUERY,
  response: responses({ 200: object({ windows: { type: 'array', items: windowView } }) }),
};

/** DELETE /v1/windows/:name. */
export const deleteWindowSchema: Schema = {
  summary: 'Delete a maintenance window',
  params: object({ name: WINDOW_NAME }),
  querystring: NO_QUERY,
  response: responses({ 200: object({ name: WINDOW_NAME, deleted: { type: 'boolean' } }) }),
};
