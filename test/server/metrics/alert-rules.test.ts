/**
 * The sample alert rules (server/metrics/alert-rules.yml, shown in docs/SERVER.md) are valid
 * Prometheus rules (`promtool check rules`), fire as their names say on the series otaab
 * exports (`promtool test rules` with alert-rules.test.yml), and the docs show the file as it
 * is. The metric families of otaab that a real server exposes pass `promtool check metrics`.
 */
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/cli.js';
import { releaseKey, testServer, type TestServer } from '../helpers.js';

const RULES = join(ROOT, 'server', 'metrics', 'alert-rules.yml');
const TOKEN = 'scrape-token-0123456789abcdef';
let s: TestServer;

beforeAll(async () => {
  s = await testServer([await releaseKey()], { metricsToken: TOKEN });
});
afterAll(async () => s?.close());

describe('the sample alert rules', () => {
  it('are shown in docs/SERVER.md exactly as in the rule file', async () => {
    const file = await readFile(RULES, 'utf8');
    const doc = await readFile(join(ROOT, 'docs', 'SERVER.md'), 'utf8');
    const shown = /Sample alert rules[^\n]*\n\n```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(shown).toBe(file.slice(file.indexOf('groups:')));
  });

  it('pass promtool check rules and its unit tests', async () => {
    const check = await execa('promtool', ['check', 'rules', RULES], { reject: false, all: true });
    expect(check.exitCode, check.all).toBe(0);
    expect(check.all).toMatch(/SUCCESS: 5 rules found/);
    const t = await execa('promtool', ['test', 'rules', join(ROOT, 'test', 'server', 'metrics', 'alert-rules.test.yml')], { reject: false, all: true });
    expect(t.exitCode, t.all).toBe(0);
  });

  it('use metric names a real server exposes, which pass promtool check metrics', async () => {
    const res = await s.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    for (const name of ['otaab_rollout_phase', 'otaab_devices_silent', 'otaab_reports_total', 'otaab_http_request_duration_seconds']) expect(res.body).toContain(`# TYPE ${name} `);
    // Ours only: prom-client's own process metrics (otaab_server_*) name three gauges *_total.
    const ours = res.body
      .split('\n')
      .filter((l) => !/^(# (HELP|TYPE) )?otaab_server_/.test(l))
      .join('\n');
    expect(ours).toContain('otaab_checkins_total');
    const lint = await execa('promtool', ['check', 'metrics'], { input: ours, reject: false, all: true });
    expect(lint.exitCode, lint.all).toBe(0);
  });
});
