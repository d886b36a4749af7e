/** Schema of GET /v1/products/:product/releases/:version/delta (the console's delta figures). */
import { PRODUCT, SHA256, VERSION, nullable, object, responses, type Schema } from './common.js';

const int = { type: 'integer' };

/** The fields of `ota-release delta-report --json`. */
const report = object({
  bundleBytes: int,
  wireBytes: int,
  requests: int,
  imageBytes: int,
  localBytes: int,
  fetchedImageBytes: int,
  chunks: int,
  fetchedChunks: int,
  headBytes: int,
});

/** GET /v1/products/:product/releases/:version/delta. */
export const deltaFiguresSchema: Schema = {
  summary:
    "What a device running an earlier release of the product downloads to install this one by delta (`ota-release delta-report`'s figures, from the stored bundles); `previous` earlier releases (default 3, newest first), or only `from`",
  params: object({ product: PRODUCT, version: VERSION }),
  querystring: object({ from: VERSION, previous: { type: 'string', pattern: '^(10|[1-9])$' } }, ['from', 'previous']),
  response: responses({
    200: object({
      product: PRODUCT,
      version: VERSION,
      sha256: SHA256,
      indexed: { type: 'boolean' },
      deltas: {
        type: 'array',
        items: object({ from: VERSION, fromSha256: SHA256, report: nullable(report), error: nullable(object({ code: { type: 'string' }, message: { type: 'string' } })) }),
      },
    }),
  }),
};
