/**
 * Prometheus metrics: decorates the app with `metrics`, times every answered request and every
 * store operation, and serves `GET /metrics` on the API port when a scrape token is configured
 * (`metricsToken`). With `metricsListen` the exposition is served on its own address instead
 * (server/metrics/listener.ts, started by `ota-server start`); with neither, /metrics answers
 * 404 METRICS_DISABLED.
 */
import { OtaError } from '../../shared/errors.js';
import { instrumentStore } from '../metrics/instrument.js';
import { fleetGauges, ServerMetrics } from '../metrics/metrics.js';
import { scrapeAllowed } from '../metrics/listener.js';
import { unencapsulated } from '../plugin.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's Prometheus metrics. */
    metrics: ServerMetrics;
  }
}

/** The metrics plugin; register it after the services plugin and before the routes. */
export const metricsPlugin = unencapsulated('otaab-metrics', async (app) => {
  const on = app.config.metrics;
  // Off (`metrics: off`): the routes' counters stay (array increments nobody reads), nothing
  // is timed and nothing is served; the check-in benchmark compares the two.
  const metrics = new ServerMetrics({ processMetrics: on });
  app.decorate('metrics', metrics);
  if (on) {
    instrumentStore(app.store, (op) => metrics.storeOp(op));
    fleetGauges(metrics, app.store.db);
    app.addHook('onResponse', async (req, reply) => {
      // The route pattern, never the raw URL: one series per route, not per device or bundle.
      const route = req.routeOptions.url ?? 'unmatched';
      metrics.request(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    });
  }

  const { metricsToken, metricsListen } = app.config;
  app.get('/metrics', async (req, reply) => {
    if (!on) throw new OtaError('METRICS_DISABLED', 'GET /metrics: metrics are off in the server config (metrics: off)');
    if (metricsToken === null) {
      throw new OtaError(
        'METRICS_DISABLED',
        metricsListen !== null
          ? `GET /metrics: served on ${metricsListen} (metricsListen), not on the API port`
          : 'GET /metrics: set metricsToken or metricsListen in the server config to enable scraping',
      );
    }
    const verdict = scrapeAllowed(req.headers.authorization, metricsToken);
    if (verdict !== null) throw new OtaError(verdict, `GET /metrics: ${verdict === 'AUTH_REQUIRED' ? 'send "Authorization: Bearer METRICS_TOKEN"' : 'the token is not the metrics token'}`);
    return reply.type(metrics.contentType).send(await metrics.text());
  });
});
