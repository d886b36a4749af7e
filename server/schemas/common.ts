/**
 * JSON-schema building blocks shared by the routes: identifiers, the error body, and the
 * response map every route declares. Every object is closed (additionalProperties: false).
 */

/** A JSON schema, as fastify takes it. */
export type Schema = Record<string, unknown>;

/** Device ids: what a device's hostname, serial or MAC-derived name looks like. */
export const DEVICE_ID = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' } as const;
/** Device types, as in a manifest's `compatible`. */
export const COMPATIBLE = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' } as const;
/** Product names, as in a manifest's `product`. */
export const PRODUCT = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' } as const;
/** Tags ops put on devices (the groups of rollouts and maintenance windows). */
export const TAG = { type: 'string', pattern: '^[a-z0-9][a-z0-9._:-]{0,63}$' } as const;
/** Attributes a device reports, and the filters over them: at most 32 short strings. */
export const ATTRIBUTES = {
  type: 'object',
  maxProperties: 32,
  propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
  additionalProperties: { type: 'string', maxLength: 256 },
} as const;
/** Channel names. */
export const CHANNEL = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } as const;
/** A semantic version, checked precisely by shared/version where it matters. */
export const VERSION = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[0-9A-Za-z.+-]+$' } as const;
/** A lowercase hex sha256. */
export const SHA256 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
/** An ISO-8601 time. */
export const TIME = { type: 'string', format: 'date-time' } as const;
/** Free text of bounded size. */
export const text = (max: number) => ({ type: 'string', maxLength: max }) as const;
/** A nullable variant of a schema. */
export const nullable = (s: Schema): Schema => ({ anyOf: [s, { type: 'null' }] });

/** A closed object whose listed properties are all required unless named in `optional`. */
export function object(properties: Record<string, Schema>, optional: readonly string[] = []): Schema {
  return {
    type: 'object',
    additionalProperties: false,
    properties,
    required: Object.keys(properties).filter((k) => !optional.includes(k)),
  };
}

/** The body of every error answer. */
export const ERROR_BODY = object({ error: { type: 'string' }, message: { type: 'string' } });

/** No query parameters allowed. */
export const NO_QUERY = object({});

/** A route's responses: its success bodies plus the error body for every 4xx and 5xx. */
export function responses(ok: Record<number, Schema>): Record<string, Schema> {
  return { ...ok, '4xx': ERROR_BODY, '5xx': ERROR_BODY };
}
