/** The console's static files through the app: served with their types and a same-origin CSP, nothing else reachable. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseKey, testServer, type TestServer } from '../helpers.js';

let s: TestServer;

beforeAll(async () => {
  s = await testServer([await releaseKey()]);
});

afterAll(async () => {
  await s.close();
});

describe('GET /console/', () => {
  it('serves the page and its modules without a token, under a same-origin Content-Security-Policy', async () => {
    const page = await s.app.inject({ method: 'GET', url: '/console/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(page.body).toContain('<script type="module" src="app.js"></script>');
    // Nothing the page loads comes from elsewhere.
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const file of ['app.js', 'api.js', 'ui.js', 'console.css', 'pages/fleet.js', 'pages/device.js', 'pages/releases.js', 'pages/rollouts.js']) {
      const res = await s.app.inject({ method: 'GET', url: `/console/${file}` });
      expect(res.statusCode, file).toBe(200);
      expect(res.body).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
    }
    expect((await s.app.inject({ method: 'GET', url: '/console/app.js' })).headers['content-type']).toBe('text/javascript; charset=utf-8');
  });

  it('redirects / and /console to /console/', async () => {
    for (const url of ['/', '/console']) {
      const res = await s.app.inject({ method: 'GET', url });
      expect([res.statusCode, res.headers.location]).toEqual([302, '/console/']);
    }
  });

  it('answers 404 for anything that is not one of its files', async () => {
    for (const url of ['/console/nope.js', '/console/../package.json', '/console/%2e%2e/package.json', '/console/..%2fserver.db']) {
      const res = await s.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
    }
  });

  it('tells the console who the token is, for every role', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${s.tokens.technician}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ role: 'technician', id: expect.stringMatching(/^tok_/) });
    expect((await s.app.inject({ method: 'GET', url: '/v1/whoami' })).statusCode).toBe(401);
  });
});
