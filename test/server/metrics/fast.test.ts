/** fast.ts's families in prom-client's exposition: cumulative buckets, +Inf, sum and count; counters from 0. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter, FastHistogram } from '../../../server/metrics/fast.js';

describe('FastHistogram and FastCounter', () => {
  it('export what prom-client would, through a prom-client registry', async () => {
    const r = new Registry();
    const h = new FastHistogram('t_seconds', 'test durations', ['op'], [0.01, 0.1, 1]);
    const c = new FastCounter('t_total', 'test count', ['kind']);
    h.register(r);
    c.register(r);
    const a = h.child({ op: 'a' });
    for (const v of [0.005, 0.01, 0.05, 0.5, 3]) a.observe(v);
    c.child({ kind: 'x' }).inc();
    c.child({ kind: 'x' }).inc(2);
    c.child({ kind: 'y' });
    const text = await r.metrics();
    expect(text).toContain('# TYPE t_seconds histogram');
    expect(text).toContain('t_seconds_bucket{op="a",le="0.01"} 2\nt_seconds_bucket{op="a",le="0.1"} 3\nt_seconds_bucket{op="a",le="1"} 4\nt_seconds_bucket{op="a",le="+Inf"} 5');
    expect(text).toContain('t_seconds_sum{op="a"} 3.565');
    expect(text).toContain('t_seconds_count{op="a"} 5');
    expect(text).toContain('# TYPE t_total counter\nt_total{kind="x"} 3\nt_total{kind="y"} 0');
  });
});
