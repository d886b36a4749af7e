/**
 * The server app factory: services from the data directory, plugins (services, errors, auth,
 * OpenAPI) and the route groups under /v1. It never listens; `ota-server start` does, and
 * tests drive it with `app.inject()`.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Keyring } from '../shared/signing.js';
import type { ServerConfig } from './config.js';
import { authPlugin } from './plugins/auth.js';
import { consolePlugin } from './plugins/console.js';
import { errorsPlugin } from './plugins/errors.js';
import { eventsPlugin } from './plugins/events.js';
import { jsonBodyPlugin } from './plugins/json-body.js';
import { metricsPlugin } from './plugins/metrics.js';
import { openapiPlugin } from './plugins/openapi.js';
import { servicesPlugin } from './plugins/services.js';
import { bundleRoutes } from './routes/bundles.js';
import { channelRoutes } from './routes/channels.js';
import { checkinRoutes } from './routes/checkin.js';
import { deltaFiguresRoutes } from './routes/delta-figures.js';
import { deviceRoutes } from './routes/devices.js';
import { eventRoutes } from './routes/events.js';
import { fleetPageRoutes } from './routes/fleet-page.js';
import { releaseRoutes } from './routes/releases.js';
import { rolloutRoutes } from './routes/rollouts.js';
import { openServices, type Services } from './services.js';

/** What `buildApp` takes. */
export interface AppOptions {
  config: ServerConfig;
  /** Release keyring; by default loaded from `config.releaseKeys`. */
  keyring?: Keyring;
  /** Already opened services (otherwise opened from `config.data`). */
  services?: Services;
  /** Log to stdout (the server) or not (tests). */
  logger?: boolean;
  /** Serve HTTPS with this PEM certificate chain and key (from config tlsCert and tlsKey). */
  tls?: { cert: Buffer; key: Buffer };
}

/** Builds the app over a data directory; closing the app closes the database. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const services = opts.services ?? (await openServices(config, opts.keyring));
  const app = Fastify({
    logger: opts.logger === false ? false : { level: config.logLevel },
    // Check-ins are many and alike: log what changes state, not every request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxJsonBody,
    // Large uploads on slow links must not be cut by a request deadline.
    requestTimeout: 0,
    return503OnClosing: true,
    // HTTPS through a server of our own: fastify then stays typed as the HTTP instance it is everywhere else.
    ...(opts.tls ? { serverFactory: (handler: Parameters<typeof createHttpsServer>[1]) => createHttpsServer({ cert: opts.tls!.cert, key: opts.tls!.key }, handler) as unknown as Server } : {}),
    ajv: {
      // Reject unknown fields and wrong types instead of silently dropping or coercing them.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
  });
  try {
    await app.register(servicesPlugin, { config, services });
    // In this order: errors and metrics see every request, auth runs before any route.
    for (const plugin of [errorsPlugin, metricsPlugin, jsonBodyPlugin, authPlugin, openapiPlugin, consolePlugin, eventsPlugin]) await app.register(plugin);
    await app.register(
      async (v1) => {
        for (const routes of [releaseRoutes, channelRoutes, deviceRoutes, fleetPageRoutes, checkinRoutes, bundleRoutes, rolloutRoutes, deltaFiguresRoutes, eventRoutes]) await v1.register(routes);
      },
      { prefix: '/v1' },
    );
    await app.ready();
  } catch (err) {
    await app.close();
    services.store.close();
    throw err;
  }
  return app;
}
