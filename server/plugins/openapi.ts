/**
 * The OpenAPI 3.1 document at GET /v1/openapi.json, written from the routes' own schemas as
 * they register, so the document cannot drift from what the server validates.
 */
import type { RouteOptions } from 'fastify';
import { unencapsulated } from '../plugin.js';
import { object, responses, type Schema } from '../schemas/common.js';

interface Operation {
  method: string;
  url: string;
  schema: Schema;
  roles: readonly string[] | undefined;
}

function parameters(where: 'path' | 'query', s: Schema | undefined): Schema[] {
  const props = (s?.properties ?? {}) as Record<string, Schema>;
  const required = (s?.required ?? []) as string[];
  return Object.entries(props).map(([name, schema]) => ({ name, in: where, required: where === 'path' || required.includes(name), schema }));
}

function operation(op: Operation): Schema {
  const s = op.schema;
  const out: Schema = { summary: s.summary, operationId: `${op.method.toLowerCase()}${op.url.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}` };
  if (op.roles) {
    out.security = [{ bearer: [] }];
    out['x-roles'] = op.roles;
    out.description = `Roles: ${op.roles.join(', ')}.`;
  }
  const params = [...parameters('path', s.params as Schema | undefined), ...parameters('query', s.querystring as Schema | undefined)];
  if (params.length > 0) out.parameters = params;
  if (s.body) out.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
  if (Array.isArray(s.consumes)) out.requestBody = { required: true, content: Object.fromEntries((s.consumes as string[]).map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) };
  const res: Schema = {};
  for (const [code, schema] of Object.entries((s.response ?? {}) as Record<string, Schema>)) {
    const binary = (schema as Schema).format === 'binary';
    res[code.toUpperCase()] = {
      description: code.startsWith('2') ? 'success' : 'error: { error: CODE, message }',
      content: { [code.startsWith('2') && Array.isArray(s.produces) ? String(s.produces[0]) : binary ? 'application/octet-stream' : 'application/json']: { schema } },
    };
  }
  out.responses = res;
  return out;
}

/** Builds the document from the collected routes. */
export function openapiDocument(ops: readonly Operation[]): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const op of ops) {
    const path = op.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[op.method.toLowerCase()] = operation(op);
  }
  return {
    openapi: '3.1.0',
    info: { title: 'otaab server API', version: '1', description: 'Signed releases in, signed check-in directives out. Errors are { "error": CODE, "message": text }; see docs/SERVER.md.' },
    paths,
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from `ota-server token create` or from enrollment.' } } },
  };
}

const anyObject = { type: 'object', additionalProperties: true };

/** The OpenAPI plugin: collects every route registered after it and serves the document. */
export const openapiPlugin = unencapsulated('otaab-openapi', async (app) => {
  const ops: Operation[] = [];
  let doc: Schema | undefined;
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!route.schema || (route.schema as Schema).hide) return;
    for (const method of methods) {
      if (method === 'HEAD') continue;
      ops.push({ method, url: route.url, schema: route.schema as Schema, roles: route.config?.roles });
    }
  });
  app.get(
    '/v1/openapi.json',
    {
      schema: {
        summary: 'This document',
        querystring: object({}),
        response: responses({
          200: object({ openapi: { type: 'string' }, info: anyObject, paths: anyObject, components: anyObject }),
        }),
      },
    },
    async () => (doc ??= openapiDocument(ops)),
  );
});
