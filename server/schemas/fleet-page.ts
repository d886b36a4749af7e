/** Schemas of the console's views: the fleet page, its counts, releases with modules, whoami. */
import { CHANNEL, COMPATIBLE, DEVICE_ID, NO_QUERY, PRODUCT, TAG, VERSION, nullable, object, responses, type Schema } from './common.js';
import { releaseFields } from './releases.js';

const str = { type: 'string' };
const strOrNull = { type: ['string', 'null'] };
const int = { type: 'integer' };
const STATE_FILTER = { type: 'string', enum: ['unknown', 'idle', 'downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed', 'rolling-back', 'rolled-back', 'failed'] };

const filters = {
  product: PRODUCT,
  channel: CHANNEL,
  state: STATE_FILTER,
  version: VERSION,
  compatible: COMPATIBLE,
  tag: TAG,
  outcome: { type: 'string', enum: ['success', 'failure'] },
  prefix: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9._:-]*$' },
  silent: { type: 'string', pattern: '^[0-9]{1,9}$' },
};
const FILTER_NAMES = Object.keys(filters);

const fleetRow = object({
  id: DEVICE_ID,
  product: strOrNull,
  compatible: str,
  channel: str,
  tags: { type: 'array', items: str },
  slot: strOrNull,
  running: strOrNull,
  version: strOrNull,
  state: strOrNull,
  transaction: nullable(object({ version: str, state: str })),
  lastSeen: strOrNull,
  lastOutcome: nullable(object({ outcome: str, reason: strOrNull, version: str, at: str })),
  pendingRollback: { type: 'boolean' },
});

/** GET /v1/fleet/devices. */
export const fleetDevicesSchema: Schema = {
  summary: 'A page of the fleet, filtered, by device id; `next` is the cursor of the following page',
  querystring: object({ ...filters, cursor: DEVICE_ID, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } }, [...FILTER_NAMES, 'cursor', 'limit']),
  response: responses({ 200: object({ devices: { type: 'array', items: fleetRow }, next: strOrNull }) }),
};

/** GET /v1/fleet/counts. */
export const fleetCountsSchema: Schema = {
  summary: 'Devices of the filtered fleet by state and by committed version',
  querystring: object(filters, FILTER_NAMES),
  response: responses({
    200: object({
      total: int,
      byState: { type: 'array', items: object({ state: str, devices: int }) },
      byVersion: { type: 'array', items: object({ version: str, devices: int }) },
    }),
  }),
};

const payload = object(
  {
    name: str,
    type: str,
    size: int,
    version: str,
    target: str,
    compression: str,
    unpackedSize: int,
    chunkIndexSize: int,
  },
  ['version', 'target', 'compression', 'unpackedSize', 'chunkIndexSize'],
);

/** GET /v1/fleet/releases. */
export const fleetReleasesSchema: Schema = {
  summary: 'Releases with their modules, sizes, signer, channels and rollouts',
  querystring: object({ product: PRODUCT }, ['product']),
  response: responses({
    200: object({
      releases: {
        type: 'array',
        items: object({
          ...releaseFields,
          format: int,
          notes: strOrNull,
          modules: { type: 'array', items: payload },
          rollouts: int,
        }),
      },
    }),
  }),
};

/** GET /v1/whoami. */
export const whoamiSchema: Schema = {
  summary: "The caller's token: its id and role (the console shows what the role may do)",
  querystring: NO_QUERY,
  response: responses({ 200: object({ id: str, role: str }) }),
};
