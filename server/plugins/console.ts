/**
 * The web console, served by the server itself from the static files in server/console/ (plain
 * HTML, CSS and ES modules: no build step, nothing fetched from the internet). The files are
 * read once when the app starts, so a request can only ever get one of them: there is no path
 * to traverse. The console talks to the API with the token a person logs in with.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unencapsulated } from '../plugin.js';

const HERE = dirname(fileURLToPath(import.meta.url));
// server/plugins (tests) or dist/server/plugins (the built server): the files stay in the source tree.
const ROOT = resolve(HERE, ...(basename(resolve(HERE, '..', '..')) === 'dist' ? ['..', '..', '..'] : ['..', '..']));
/** Where the console's files live. */
export const CONSOLE_DIR = join(ROOT, 'server', 'console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Same-origin only: the console loads nothing from elsewhere and may be framed by no one. */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (TYPES[extname(e.name)]) out.push(p);
  }
  return out;
}

/** The console plugin: GET /console/ and its assets. */
export const consolePlugin = unencapsulated<{ dir?: string }>('otaab-console', async (app, opts) => {
  const dir = opts.dir ?? CONSOLE_DIR;
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const f of await files(dir)) assets.set(relative(dir, f).split('\\').join('/'), { type: TYPES[extname(f)]!, body: await readFile(f) });

  app.get('/console', async (_req, reply) => reply.redirect('/console/'));
  app.get('/', async (_req, reply) => reply.redirect('/console/'));
  app.get<{ Params: { '*': string } }>('/console/*', async (req, reply) => {
    const path = req.params['*'] === '' ? 'index.html' : req.params['*'];
    const asset = assets.get(path);
    if (!asset) return reply.code(404).send({ error: 'ROUTE_NOT_FOUND', message: `GET /console/${path}: no such console file` });
    return reply
      .type(asset.type)
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(asset.body);
  });
});
