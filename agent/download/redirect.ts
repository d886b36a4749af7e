/**
 * Bundle downloads that the server redirects to another origin: a presigned object-store URL
 * or a CDN (server bundleDownload `presigned` or `public`). The HTTP clients (http1.ts for the
 * whole bundle, got for the delta's ranges) follow the redirect, and on a different origin drop
 * the device's Authorization themselves. What is left to us:
 *
 * - If-Range names the server's ETag, `"<sha256>"`; an object store or CDN has its own (an MD5
 *   or a multipart hash), so If-Range would turn each range into the whole bundle. It is not
 *   sent past a redirect, and the answer's ETag is not compared there: the URL names the
 *   content (the key is the sha256), the size is still checked against Content-Range, and the
 *   bundle's signed hashes cover every byte.
 * - A presigned URL that has expired answers 403. Every request starts at the server again,
 *   which hands out a fresh URL, so such a 403 is a transient failure: retried, not a refusal.
 */
import type { Request } from 'got';

/** The headers a bundle request does not send past a redirect. */
export const REDIRECT_DROPS: readonly string[] = ['if-range'];

/** got options for a bundle request: drop If-Range on a redirect. */
export const redirectHooks = {
  beforeRedirect: [
    (options: { headers: Record<string, string | string[] | undefined> }): void => {
      for (const name of REDIRECT_DROPS) delete options.headers[name];
    },
  ],
};

/** True when the answer came from where the server redirected to. */
export function redirected(req: Pick<Request, 'redirectUrls'>): boolean {
  return req.redirectUrls.length > 0;
}
