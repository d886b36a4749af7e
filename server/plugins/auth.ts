/**
 * Bearer-token authentication and role checks, before any body byte is read. A route opts in
 * with `config.roles`; `config.ownDevice` further binds device tokens to the `:id` in the path.
 */
import { OtaError } from '../../shared/errors.js';
import type { TokenIdentity } from '../db/tokens.js';
import { unencapsulated } from '../plugin.js';
import type { Role } from '../tokens.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed on the route; absent: the route is public. */
    roles?: readonly Role[];
    /** A device token may act only on the device named by the `:id` parameter. */
    ownDevice?: boolean;
  }
  interface FastifyRequest {
    /** The caller, on routes that require a token. */
    identity: TokenIdentity | null;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The auth plugin. */
export const authPlugin = unencapsulated('otaab-auth', async (app) => {
  app.decorateRequest('identity', null);
  app.addHook('onRequest', async (req) => {
    const { roles, ownDevice } = req.routeOptions.config;
    if (!roles) return;
    const header = req.headers.authorization;
    if (header === undefined) throw new OtaError('AUTH_REQUIRED', `${req.method} ${req.url}: no Authorization header`);
    const m = BEARER.exec(header);
    if (!m) throw new OtaError('AUTH_REQUIRED', `${req.method} ${req.url}: the Authorization header is not "Bearer TOKEN"`);
    const who = app.store.tokens.identify(m[1]!);
    if (!who) throw new OtaError('AUTH_INVALID', `${req.method} ${req.url}: the token is unknown or revoked`);
    if (!roles.includes(who.role)) {
      throw new OtaError('AUTH_FORBIDDEN', `${req.method} ${req.routeOptions.url ?? req.url}: a ${who.role} token may not do this (allowed: ${roles.join(', ')})`);
    }
    if (ownDevice && who.role === 'device' && (req.params as { id?: string }).id !== who.device) {
      throw new OtaError('AUTH_WRONG_DEVICE', `${req.method} ${req.url}: this token belongs to device ${who.device ?? '?'}`);
    }
    req.identity = who;
  });
});
