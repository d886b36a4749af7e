/**
 * Counters and histograms for the check-in path, cheaper than prom-client's own: prom-client
 * hashes the label set at every update, even through a child from `labels()` (about a
 * microsecond each; a check-in makes eight updates). Here a series is resolved once and an
 * update is an array increment. The families register with a prom-client Registry as
 * collectors, so the exposition (format, escaping, content type) stays prom-client's.
 */
import type { Metric, Registry } from 'prom-client';

/** Records one duration, seconds. */
export interface Observer {
  observe(v: number): void;
}

/** Adds to a count. */
export interface Incrementer {
  inc(n?: number): void;
}

type Labels = Record<string, string>;

interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}

function key(labelNames: readonly string[], labels: Labels): string {
  return labelNames.map((n) => labels[n] ?? '').join('\u0000');
}

/** A counter family. */
export class FastCounter {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The series of a label set, created at 0 (so it is exported before its first event). */
  child(labels: Labels = {}): Incrementer {
    const k = key(this.labelNames, labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels: { ...labels }, value: 0 }));
    const series = s;
    return { inc: (n = 1) => void (series.value += n) };
  }

  /** Registers with a prom-client registry. */
  register(registry: Registry): void {
    registry.registerMetric({
      name: this.name,
      help: this.help,
      get: async () => ({ name: this.name, help: this.help, type: 'counter', aggregator: 'sum', values: [...this.series.values()].map((s): Value => ({ labels: s.labels, value: s.value })) }),
    } as unknown as Metric);
  }
}

/** A histogram family with fixed buckets (upper bounds, seconds). */
export class FastHistogram {
  private readonly series = new Map<string, { labels: Labels; counts: Float64Array; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}

  /** The series of a label set. */
  child(labels: Labels = {}): Observer {
    const k = key(this.labelNames, labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels: { ...labels }, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }));
    const series = s;
    const b = this.buckets;
    return {
      observe: (v) => {
        let i = 0;
        while (i < b.length && v > b[i]!) i++;
        if (i < b.length) series.counts[i]!++;
        series.sum += v;
        series.count++;
      },
    };
  }

  private values(): Value[] {
    const out: Value[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        out.push({ labels: { ...s.labels, le: String(le) }, value: acc, metricName: `${this.name}_bucket` });
      });
      out.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      out.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      out.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return out;
  }

  /** Registers with a prom-client registry. */
  register(registry: Registry): void {
    registry.registerMetric({
      name: this.name,
      help: this.help,
      get: async () => ({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values: this.values() }),
    } as unknown as Metric);
  }
}
