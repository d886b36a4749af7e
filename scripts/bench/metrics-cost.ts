/**
 * What the Prometheus metrics add to one check-in, in-process: the directive counter, the
 * request histogram, and the store histogram of the six store operations a check-in makes
 * (token lookup, waiting rollback, routing, record, rollouts, offer). Compared with the time
 * of a whole check-in, this is the cost of running with metrics on.
 */
import { ServerMetrics } from '../../server/metrics/metrics.js';
import { median } from './util.js';

/** Median microseconds of the metrics work of one check-in, over `runs` batches of 20,000. */
export function metricsMicrosPerCheckin(runs = 7): number {
  const m = new ServerMetrics({ processMetrics: false });
  const ops = ['tokens.identify', 'rollbacks.waiting', 'devices.routing', 'devices.recordCheckin', 'rollouts.choose', 'releases.offer'].map((op) => m.storeOp(op));
  const one = (i: number): void => {
    for (const o of ops) o.observe(0.00002 + (i % 7) * 1e-6);
    m.checkin('none');
    m.request('POST', '/v1/devices/:id/checkin', 200, 0.0008 + (i % 5) * 1e-4);
  };
  for (let i = 0; i < 20_000; i++) one(i);
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 20_000; i++) one(i);
    times.push(Number(process.hrtime.bigint() - t) / 1000 / 20_000);
  }
  return median(times);
}
