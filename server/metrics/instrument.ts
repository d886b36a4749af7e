/**
 * Times every method of the store's query groups (`devices.routing`, `reports.add`, ...) into
 * the store histogram, by replacing each method on the group instance with a timed wrapper.
 * Groups added to the Store later are covered without changes here.
 */
import type { Store } from '../db/store.js';
import type { Observer } from './metrics.js';

type AnyFn = (...args: unknown[]) => unknown;

/** Wraps every query-group method of `store`; `observer(op)` gives the histogram child of an op. */
export function instrumentStore(store: Store, observer: (op: string) => Observer): void {
  for (const [group, queries] of Object.entries(store)) {
    if (group === 'db' || queries === null || typeof queries !== 'object') continue;
    const proto = Object.getPrototypeOf(queries) as object | null;
    if (proto === null || proto === Object.prototype) continue;
    const target = queries as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const orig = Object.getOwnPropertyDescriptor(proto, name)?.value as unknown;
      if (name === 'constructor' || typeof orig !== 'function') continue;
      const o = observer(`${group}.${name}`);
      target[name] = function timed(this: unknown, ...args: unknown[]): unknown {
        const t = performance.now();
        try {
          return (orig as AnyFn).apply(queries, args);
        } finally {
          o.observe((performance.now() - t) / 1000);
        }
      };
    }
  }
}
