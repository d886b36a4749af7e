/** Schema of the bundle download route. */
import { NO_QUERY, SHA256, object, responses, type Schema } from './common.js';

const binary = { type: 'string', format: 'binary' };

/** GET /v1/bundles/:sha256: the bundle bytes, whole (200) or one range (206). */
export const bundleSchema: Schema = {
  summary: 'Download a bundle; honours a single Range and If-Range (ETag "<sha256>")',
  params: object({ sha256: SHA256 }),
  querystring: NO_QUERY,
  response: responses({ 200: binary, 206: binary }),
};
