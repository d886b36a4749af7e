// Health checks: systemd units (restarted N times through a systemctl with the real CLI),
// HTTP status against a real local server, commands with timeouts, and the overall deadline.
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config/load.js';
import { runHealthChecks } from '../../agent/health/run.js';
import { excerpt, EXCERPT_CHARS } from '../../agent/health/excerpt.js';
import { fakeSystemctl, setAutoRestarting, setUnit } from './helpers/fake-systemctl.js';

let dir: string;
let systemctl: string;
let server: Server;
let base: string;
let hits = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'otaab-health-'));
  systemctl = await fakeSystemctl(join(dir, 'units'));
  server = createServer((req, res) => {
    hits++;
    if (req.url === '/ok') res.writeHead(200).end('fine');
    else if (req.url === '/warming') res.writeHead(hits % 3 === 0 ? 200 : 503).end('starting');
    else res.writeHead(500).end('database unreachable');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const config = (healthChecks: unknown[], healthDeadlineSeconds = 60) =>
  parseConfig(
    {
      device: { id: 'd', compatible: 'c' },
      slots: [{ name: 'A', kind: 'raw', path: '/a' }, { name: 'B', kind: 'raw', path: '/b' }],
      trustedKeys: ['/k'],
      healthChecks,
      healthDeadlineSeconds,
      tools: { systemctl },
    },
    '/x/agent.json',
  );

describe('health checks', () => {
  it('passes when every check passes, keeping each result', async () => {
    await setUnit(join(dir, 'units'), 'app.service', 'active');
    const r = await runHealthChecks(config([
      { name: 'unit', systemd: 'app.service' },
      { name: 'web', http: `${base}/ok` },
      { name: 'cmd', command: ['sh', '-c', 'echo all good'] },
    ]));
    expect(r.passed).toBe(true);
    expect(r.reason).toBeUndefined();
    expect(r.results.map((x) => [x.name, x.kind, x.verdict])).toEqual([
      ['unit', 'systemd', 'pass'],
      ['web', 'http', 'pass'],
      ['cmd', 'command', 'pass'],
    ]);
    expect(r.results[2]!.excerpt).toBe('all good');
  });

  it('restarts a failed unit up to N times before it counts as failed', async () => {
    const units = join(dir, 'units');
    await setUnit(units, 'flaky.service', 'failed', 1);
    const ok = await runHealthChecks(config([{ name: 'flaky', systemd: 'flaky.service', restarts: 2, settleSeconds: 0 }]));
    expect(ok.results[0]).toMatchObject({ verdict: 'pass', excerpt: 'flaky.service active after 2 restart(s)' });

    await setUnit(units, 'dead.service', 'failed', -1);
    const bad = await runHealthChecks(config([{ name: 'dead', systemd: 'dead.service', restarts: 2, settleSeconds: 0 }]));
    expect(bad.passed).toBe(false);
    expect(bad.reason).toBe('health-check:dead');
    expect(bad.results[0]!.excerpt).toContain('after 2 restart(s)');
    expect(bad.results[0]!.excerpt).toContain('Active: failed');
    const calls = (await readFile(join(units, 'calls'), 'utf8')).split('\n').filter((l) => l.endsWith(' dead.service'));
    expect(calls).toEqual(['is-active dead.service', 'restart dead.service', 'is-active dead.service', 'restart dead.service', 'is-active dead.service', 'status dead.service']);
  });

  it('waits for a unit that is still activating instead of restarting it', async () => {
    const units = join(dir, 'units');
    await setUnit(units, 'slow.service', 'activating');
    setTimeout(() => void writeFile(join(units, 'slow.service'), 'active\n'), 1200);
    const r = await runHealthChecks(config([{ name: 'slow', systemd: 'slow.service', restarts: 0 }]));
    expect(r.results[0]).toMatchObject({ verdict: 'pass', excerpt: 'slow.service active' });
    const calls = (await readFile(join(units, 'calls'), 'utf8')).split('\n').filter((l) => l.endsWith(' slow.service'));
    expect(calls.every((c) => c === 'is-active slow.service' || c === 'show slow.service')).toBe(true);
  });

  it('fails a unit that systemd keeps restarting (auto-restart) with its reason, not at the deadline', async () => {
    const units = join(dir, 'units');
    await setAutoRestarting(units, 'crashy.service', 1);
    // Within its allowance of restarts it is still waited for; past it the check fails at once.
    setTimeout(() => void writeFile(join(units, 'crashy.service.nrestarts'), '3\n'), 1200);
    const r = await runHealthChecks(config([{ name: 'crashy', systemd: 'crashy.service', restarts: 2 }]));
    expect(r.reason).toBe('health-check:crashy');
    // 'fail', not 'timeout': the check ended on the restart count, not on the 60 s deadline.
    expect(r.results[0]).toMatchObject({ verdict: 'fail' });
    expect(r.results[0]!.excerpt).toContain('crashy.service keeps failing: systemd restarted it 3 time(s) (result exit-code), more than the 2 allowed');
    // systemd does the restarting: the agent only watched (is-active, show) and took the status.
    const calls = (await readFile(join(units, 'calls'), 'utf8')).split('\n').filter((l) => l.endsWith(' crashy.service'));
    expect(calls).not.toContain('restart crashy.service');
    expect(calls).toContain('show crashy.service');
    expect(calls.at(-1)).toBe('status crashy.service');
  });

  it('asks an HTTP URL again while it warms up, and fails on a status that stays wrong', async () => {
    hits = 0;
    const warm = await runHealthChecks(config([{ name: 'warm', http: `${base}/warming` }]));
    expect(warm.results[0]!.verdict).toBe('pass');
    const bad = await runHealthChecks(config([{ name: 'api', http: `${base}/broken` }], 3));
    expect(bad.reason).toBe('health-check:api');
    expect(bad.results[0]!.excerpt).toContain('HTTP 500 (expected 200): database unreachable');
  });

  it('fails a command on a non-zero exit or its own timeout, with the output excerpt', async () => {
    const r = await runHealthChecks(config([
      { name: 'exit3', command: ['sh', '-c', 'echo disk full >&2; exit 3'] },
      { name: 'hang', command: ['sleep', '30'], timeoutSeconds: 1 },
    ]));
    expect(r.reason).toBe('health-check:exit3');
    expect(r.results[0]).toMatchObject({ verdict: 'fail', excerpt: 'exit status 3: disk full' });
    expect(r.results[1]).toMatchObject({ verdict: 'fail' });
    expect(r.results[1]!.excerpt).toMatch(/^killed after 1 s/);
  });

  it('calls it a timeout when the overall deadline cuts checks short', async () => {
    const r = await runHealthChecks(config([
      { name: 'slow', command: ['sleep', '30'], timeoutSeconds: 600 },
      { name: 'never', command: ['true'] },
    ], 1));
    expect(r.passed).toBe(false);
    expect(r.reason).toBe('timeout');
    expect(r.results.map((x) => x.verdict)).toEqual(['timeout', 'timeout']);
    expect(r.results[1]!.excerpt).toContain('not run');
  });

  it('keeps excerpts bounded, ending with the output\'s end', () => {
    const long = `${'a'.repeat(5000)}THE END`;
    const e = excerpt(long);
    expect(e.length).toBe(EXCERPT_CHARS + 1);
    expect(e.endsWith('THE END')).toBe(true);
  });
});
