/** Plugin helpers. */
import type { FastifyPluginAsync } from 'fastify';

/**
 * Marks a plugin as not encapsulated, so its decorators and hooks apply to the whole app
 * (what the fastify-plugin package does, without the dependency).
 */
export function unencapsulated<O extends Record<string, unknown>>(name: string, plugin: FastifyPluginAsync<O>): FastifyPluginAsync<O> {
  const p = plugin as FastifyPluginAsync<O> & Record<symbol, unknown>;
  p[Symbol.for('skip-override')] = true;
  p[Symbol.for('fastify.display-name')] = name;
  return p;
}
