/** SQLite rows use snake_case columns; the agent's types use camelCase. One conversion for both. */

/** `bytes_read` → `bytesRead`, at the type level. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** A row with its keys in camelCase. */
export type Camelized<R> = { [K in keyof R as CamelCase<K & string>]: R[K] };

/** The row with every key in camelCase (values unchanged). */
export function camelized<R extends object>(row: R): Camelized<R> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) out[key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = value;
  return out as Camelized<R>;
}
