/**
 * Preload (`node --import dist/scripts/bench/auth-preload.js ...`) that adds
 * `Authorization: Bearer $OTA_BENCH_AUTH_TOKEN` to every HTTP request the process makes to the
 * origin `$OTA_BENCH_AUTH_ORIGIN`. `ota-agent install URL` sends no token yet, but the server
 * serves bundles only to a device or ops token; this puts the device's token on the request
 * without touching a byte of the data path (got reads `http.request` at call time, as nock
 * relies on).
 */
import http from 'node:http';

const token = process.env.OTA_BENCH_AUTH_TOKEN;
const origin = process.env.OTA_BENCH_AUTH_ORIGIN;

type Request = typeof http.request;

if (token && origin) {
  const target = new URL(origin);
  const original: Request = http.request;
  const sameOrigin = (host: string | null | undefined, port: string | number | null | undefined): boolean =>
    host === target.hostname && String(port || 80) === (target.port || '80');
  const patched = ((...args: unknown[]) => {
    // got calls request(url: URL, options, callback); others call request(options, callback).
    const url = args[0] instanceof URL ? args[0] : undefined;
    const opts = args.find((a): a is http.RequestOptions => typeof a === 'object' && a !== null && !(a instanceof URL));
    const ours = url ? sameOrigin(url.hostname, url.port) : opts ? sameOrigin(opts.hostname ?? opts.host, opts.port) : false;
    if (ours && opts) opts.headers = { ...(opts.headers as Record<string, string | string[] | number> | undefined), authorization: `Bearer ${token}` };
    return (original as (...a: unknown[]) => http.ClientRequest)(...args);
  }) as Request;
  http.request = patched;
}
