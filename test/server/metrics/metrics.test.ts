/**
 * GET /metrics through the app: refused without the scrape token, and counting what check-ins,
 * reports, downloads, requests and store operations did; the separate listener; label bounds.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNonce, type CheckinRequest, type Report } from '../../../shared/protocol.js';
import type { GeneratedKey } from '../../../shared/signing.js';
import { reasonLabel } from '../../../server/metrics/labels.js';
import { parseListen, startMetricsListener } from '../../../server/metrics/listener.js';
import { bearer, enroll, makeBundle, releaseKey, testServer, type BuiltBundle, type TestServer } from '../helpers.js';

const TOKEN = 'scrape-token-0123456789abcdef';
let key: GeneratedKey;
let s: TestServer;
let bundle: BuiltBundle;
let device: string;

/** The value of one sample line, e.g. `otaab_checkins_total{directive="none"}`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(): Promise<string> {
  const res = await s.app.inject({ method: 'GET', url: '/metrics', headers: bearer(TOKEN) });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body;
}

beforeAll(async () => {
  key = await releaseKey();
  s = await testServer([key], { metricsToken: TOKEN });
  bundle = await makeBundle(join(s.data, '..', 'in'), key, { version: '1.0.0', payloadSize: 100_000 });
  const up = await s.app.inject({ method: 'POST', url: '/v1/releases', headers: { ...bearer(s.tokens.ops), 'content-type': 'application/octet-stream' }, payload: await readFile(bundle.path) });
  expect(up.statusCode).toBe(201);
  device = await enroll(s, 'gw-metrics');
});

afterAll(async () => {
  await s.close();
});

describe('GET /metrics on the API port', () => {
  it('needs the scrape token: none is 401 AUTH_REQUIRED, another token (even ops) 401 AUTH_INVALID', async () => {
    const none = await s.app.inject({ method: 'GET', url: '/metrics' });
    expect([none.statusCode, none.json().error]).toEqual([401, 'AUTH_REQUIRED']);
    const ops = await s.app.inject({ method: 'GET', url: '/metrics', headers: bearer(s.tokens.ops) });
    expect([ops.statusCode, ops.json().error]).toEqual([401, 'AUTH_INVALID']);
  });

  it('counts check-ins by directive, reports by outcome and reason class, and store and request latencies', async () => {
    const before = await scrape();
    const none0 = sample(before, 'otaab_checkins_total{directive="none"}')!;
    for (let i = 0; i < 3; i++) {
      const body: CheckinRequest = { nonce: newNonce(), slot: 'A', version: null, state: 'idle' };
      const res = await s.app.inject({ method: 'POST', url: '/v1/devices/gw-metrics/checkin', headers: bearer(device), payload: body });
      expect(res.statusCode).toBe(200);
    }
    const report = (id: string, over: Partial<Report>): Report => ({ id, transaction: 'tx1', version: '1.0.0', state: 'downloading', at: new Date().toISOString(), ...over });
    for (const r of [
      report('r1', {}),
      report('r2', { state: 'failed', outcome: 'failure', reason: 'health-check: /etc/healthy missing (exit 1)' }),
      report('r2', { state: 'failed', outcome: 'failure', reason: 'health-check: a duplicate is not counted' }),
    ]) {
      expect((await s.app.inject({ method: 'POST', url: '/v1/devices/gw-metrics/reports', headers: bearer(device), payload: r })).statusCode).toBe(200);
    }
    const text = await scrape();
    expect(sample(text, 'otaab_checkins_total{directive="none"}')).toBe(none0 + 3);
    expect(sample(text, 'otaab_checkins_total{directive="update"}')).toBe(0);
    expect(sample(text, 'otaab_reports_total{outcome="progress",reason=""}')).toBe(1);
    expect(sample(text, 'otaab_reports_total{outcome="failure",reason="health-check"}')).toBe(1);
    expect(sample(text, 'otaab_http_request_duration_seconds_count{method="POST",route="/v1/devices/:id/checkin",status="200"}')).toBe(3);
    expect(sample(text, 'otaab_store_operation_duration_seconds_count{op="devices.recordCheckin"}')).toBe(3);
    expect(sample(text, 'otaab_store_operation_duration_seconds_count{op="reports.add"}')).toBe(3);
    expect(sample(text, 'otaab_devices{state="idle"}')).toBe(1);
    expect(sample(text, 'otaab_devices_silent{for="1d"}')).toBe(0);
    expect(sample(text, 'otaab_releases')).toBe(1);
    expect(text).toMatch(/^otaab_server_process_cpu_seconds_total /m);
  });

  it('counts downloads, full and partial, and the bytes sent', async () => {
    const before = sample(await scrape(), 'otaab_download_bytes_total')!;
    const full = await s.app.inject({ method: 'GET', url: `/v1/bundles/${bundle.sha256}`, headers: bearer(device) });
    expect(full.statusCode).toBe(200);
    const part = await s.app.inject({ method: 'GET', url: `/v1/bundles/${bundle.sha256}`, headers: { ...bearer(device), range: 'bytes=100-' } });
    expect(part.statusCode).toBe(206);
    const text = await scrape();
    expect(sample(text, 'otaab_downloads_total{kind="full"}')).toBe(1);
    expect(sample(text, 'otaab_downloads_total{kind="partial"}')).toBe(1);
    // Bytes are counted when a file stream closes, just after the answer ended.
    await expect.poll(async () => sample(await scrape(), 'otaab_download_bytes_total')).toBe(before + bundle.size + bundle.size - 100);
  });

  it('shows rollouts by state, and the open phase and members of the active ones', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/v1/rollouts', headers: bearer(s.tokens.ops), payload: { product: 'gateway', version: '1.0.0', phases: [{ count: 1 }, { percent: 100 }] } });
    expect(res.statusCode, res.body).toBe(201);
    const id = (res.json() as { id: string }).id;
    let text = await scrape();
    expect(sample(text, 'otaab_rollouts{state="running"}')).toBe(1);
    expect(sample(text, 'otaab_rollouts{state="paused"}')).toBe(0);
    expect(sample(text, `otaab_rollout_phase{rollout="${id}",product="gateway",version="1.0.0",state="running"}`)).toBe(1);
    const members = text.split('\n').filter((l) => l.startsWith(`otaab_rollout_devices{rollout="${id}"`));
    const total = (res.json() as { totals: { members: number } }).totals.members;
    expect(members.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)).toBe(total);
    expect((await s.app.inject({ method: 'POST', url: `/v1/rollouts/${id}/pause`, headers: bearer(s.tokens.ops) })).statusCode).toBe(200);
    text = await scrape();
    expect(sample(text, 'otaab_rollouts{state="paused"}')).toBe(1);
    expect(sample(text, `otaab_rollout_phase{rollout="${id}",product="gateway",version="1.0.0",state="paused"}`)).toBe(1);
  });

  it('answers 404 METRICS_DISABLED when neither a token nor a listen address is configured', async () => {
    const bare = await testServer([key]);
    try {
      const res = await bare.app.inject({ method: 'GET', url: '/metrics', headers: bearer(TOKEN) });
      expect([res.statusCode, res.json().error]).toEqual([404, 'METRICS_DISABLED']);
    } finally {
      await bare.close();
    }
  });
});

describe('the metrics listener (metricsListen)', () => {
  it('serves GET /metrics alone on its own address, asking for the token when one is set', async () => {
    const { server, url } = await startMetricsListener(s.app.metrics, '127.0.0.1:0', TOKEN);
    try {
      expect((await fetch(url)).status).toBe(401);
      const ok = await fetch(url, { headers: bearer(TOKEN) });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/^# HELP otaab_checkins_total /m);
      const other = await fetch(url.replace('/metrics', '/v1/devices'), { headers: bearer(TOKEN) });
      expect([other.status, ((await other.json()) as { error: string }).error]).toEqual([404, 'ROUTE_NOT_FOUND']);
    } finally {
      server.close();
    }
  });

  it('parses host:port and refuses anything else', () => {
    expect(parseListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListen('metrics.lan:0')).toEqual({ host: 'metrics.lan', port: 0 });
    for (const bad of ['9464', ':9464', '127.0.0.1:70000', 'a b:1', '::1:9464']) expect(parseListen(bad)).toBeNull();
  });
});

describe('reasonLabel', () => {
  it.each([
    ['health-check: /etc/healthy missing (exit 1)', 'health-check'],
    ['install:SLOT_ACTIVE', 'install:SLOT_ACTIVE'],
    ['directive-refused:ROLLBACK_UNAVAILABLE', 'directive-refused:ROLLBACK_UNAVAILABLE'],
    ['technician', 'technician'],
    ['Boot-Failed after 3 tries', 'boot-failed'],
    ['', 'none'],
    [undefined, 'none'],
    ['   ', 'none'],
    ['!!! weird', 'other'],
    ['x'.repeat(500), 'x'.repeat(64)],
  ])('%j → %s', (reason, label) => {
    expect(reasonLabel(reason)).toBe(label);
  });
});
