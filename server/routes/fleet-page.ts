/**
 * The console's views over the API: a page of the fleet with filters and a cursor, counts by
 * state and version, releases with their modules, and who the caller is. Read-only, for ops and
 * technicians; the actions (rollouts, rollbacks) are the API's own routes.
 */
import type { FastifyPluginAsync } from 'fastify';
import { FleetPageQueries, type FleetFilter } from '../db/fleet-page.js';
import { fleetCountsSchema, fleetDevicesSchema, fleetReleasesSchema, whoamiSchema } from '../schemas/fleet-page.js';
import { releaseModules } from '../views/release-modules.js';

/** The query string of the fleet views (all text, as query strings are). */
interface FleetQuery extends Omit<FleetFilter, 'silentSeconds'> {
  silent?: string;
  cursor?: string;
  limit?: string;
}

/** Default and largest page size. */
export const PAGE = { default: 100, max: 1000 } as const;

/** The filter a query asks for. */
export function fleetFilter(q: FleetQuery): FleetFilter {
  const f: FleetFilter = {};
  for (const k of ['product', 'channel', 'state', 'version', 'compatible', 'tag', 'outcome', 'prefix'] as const) {
    const v = q[k];
    if (v !== undefined) f[k] = v;
  }
  if (q.silent !== undefined) f.silentSeconds = Number(q.silent);
  return f;
}

/** The console's view routes. */
export const fleetPageRoutes: FastifyPluginAsync = async (app) => {
  const fleet = new FleetPageQueries(app.store.db);
  const roles = ['ops', 'technician'] as const;

  app.get<{ Querystring: FleetQuery }>('/fleet/devices', { schema: fleetDevicesSchema, config: { roles } }, async (req) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? PAGE.default), 1), PAGE.max);
    return fleet.page(fleetFilter(req.query), req.query.cursor ?? null, limit);
  });

  app.get<{ Querystring: FleetQuery }>('/fleet/counts', { schema: fleetCountsSchema, config: { roles } }, async (req) => fleet.counts(fleetFilter(req.query)));

  app.get<{ Querystring: { product?: string } }>('/fleet/releases', { schema: fleetReleasesSchema, config: { roles } }, async (req) => ({
    releases: releaseModules(app.store.db, req.query.product ?? null),
  }));

  app.get('/whoami', { schema: whoamiSchema, config: { roles: ['ops', 'technician', 'enroll', 'device'] } }, async (req) => ({
    id: req.identity!.id,
    role: req.identity!.role,
  }));
};
