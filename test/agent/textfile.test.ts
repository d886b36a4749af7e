/**
 * The agent's node-exporter textfile: after each check against a real server (the app over
 * loopback), `metricsTextfile` holds the state, slots, committed version and check-in times; a
 * failed check-in keeps the last good one's time; the file is replaced whole (temp + rename);
 * the config key must name a .prom file.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireConnection } from '../../agent/client/connection.js';
import { ServerSession } from '../../agent/client/session.js';
import { parseConfig } from '../../agent/config/load.js';
import { renderTextfile, type AgentSnapshot } from '../../agent/metrics/textfile.js';
import { bootUntilUp } from '../../scripts/sim/simulator.js';
import { readServerPublicKey } from '../../server/server-key.js';
import { enroll, releaseKey, testServer, type TestServer } from '../server/helpers.js';
import { logSink, withDev } from './helpers/agent-inproc.js';
import { makeRig, type Rig } from './helpers/rig.js';

let s: TestServer;
let url: string;
let rig: Rig;
let prom: string;

beforeAll(async () => {
  s = await testServer([await releaseKey()]);
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
  const token = await enroll(s, 'gw-textfile');
  rig = await makeRig();
  const pub = join(rig.dir, 'server.pub');
  await writeFile(pub, (await readServerPublicKey(s.data))!);
  prom = join(rig.dir, 'textfile', 'otaab.prom');
  await import('node:fs/promises').then((fs) => fs.mkdir(dirname(prom)));
  const config = JSON.parse(JSON.stringify(rig.config)) as Record<string, unknown>;
  config.device = { id: 'gw-textfile', compatible: 'x86-gw' };
  config.server = { url, token, serverKey: pub, pollIntervalSeconds: 1 };
  config.metricsTextfile = prom;
  await writeFile(rig.configPath, JSON.stringify(config));
  await bootUntilUp(rig.dev);
});

afterAll(async () => {
  await s.close();
  await rig.cleanup();
});

function value(text: string, series: string): string | undefined {
  return text.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1);
}

describe('metricsTextfile', () => {
  it('is written after a check with state, slots and the check-in time, and kept across a failed one', async () => {
    const before = Date.now() / 1000;
    const { log } = logSink();
    await withDev(rig, async (dev) => {
      const r = await new ServerSession(dev, requireConnection(dev.server), { log, resumeInFlight: true }).check();
      expect(r.checkin?.ok).toBe(true);
    });
    const first = await readFile(prom, 'utf8');
    expect(value(first, 'otaab_agent_state{device="gw-textfile",state="idle"}')).toBe('1');
    expect(value(first, 'otaab_agent_state{device="gw-textfile",state="downloading"}')).toBe('0');
    expect(value(first, 'otaab_agent_last_checkin_success{device="gw-textfile"}')).toBe('1');
    expect(first).toMatch(/^otaab_agent_slot_info\{device="gw-textfile",slot="A",version="[^"]*",status="[^"]*",booted="true"\} 1$/m);
    expect(first).toMatch(/^otaab_agent_info\{device="gw-textfile",compatible="x86-gw",booted_slot="A"\} 1$/m);
    const seen = Number(value(first, 'otaab_agent_last_checkin_timestamp_seconds{device="gw-textfile"}'));
    expect(seen).toBeGreaterThanOrEqual(Math.floor(before));
    expect(await readdir(dirname(prom))).toEqual(['otaab.prom']);

    // The server goes away: the attempt is recorded, the last good check-in time stays.
    await s.app.close();
    await withDev(rig, async (dev) => {
      const r = await new ServerSession(dev, requireConnection(dev.server), { log, resumeInFlight: true }).check();
      expect(r.error).toBeDefined();
    });
    const second = await readFile(prom, 'utf8');
    expect(value(second, 'otaab_agent_last_checkin_success{device="gw-textfile"}')).toBe('0');
    expect(Number(value(second, 'otaab_agent_last_checkin_timestamp_seconds{device="gw-textfile"}'))).toBe(seen);
    expect(Number(value(second, 'otaab_agent_last_checkin_attempt_timestamp_seconds{device="gw-textfile"}'))).toBeGreaterThanOrEqual(seen);
    expect(await readdir(dirname(prom))).toEqual(['otaab.prom']);
  });

  it('renders the last outcome with its reason, escaping label values', () => {
    const snap: AgentSnapshot = {
      device: 'gw-1',
      compatible: 'x86-gw',
      bootedSlot: 'B',
      state: 'idle',
      committed: '1.0.0',
      slots: [
        { name: 'A', version: '1.1.0', status: 'bad' },
        { name: 'B', version: '1.0.0', status: 'good' },
      ],
      transaction: null,
      lastOutcome: { outcome: 'failure', version: '1.1.0', reason: 'health-check:app "x"\nfailed', at: new Date(1_700_000_000_000) },
      checkin: { at: new Date(1_700_000_100_000), ok: true },
    };
    const text = renderTextfile(snap, null);
    expect(text).toContain('otaab_agent_last_outcome_info{device="gw-1",outcome="failure",version="1.1.0",reason="health-check:app \\"x\\"\\nfailed"} 1');
    expect(text).toContain('otaab_agent_last_outcome_timestamp_seconds{device="gw-1"} 1700000000.000');
    expect(text).toContain('otaab_agent_committed_version_info{device="gw-1",version="1.0.0"} 1');
    expect(text).toContain('otaab_agent_last_checkin_timestamp_seconds{device="gw-1"} 1700000100.000');
  });

  it('must name a .prom file', () => {
    const base = { device: { id: 'd', compatible: 'c' }, slots: [{ name: 'A', kind: 'raw', path: '/a' }, { name: 'B', kind: 'raw', path: '/b' }], trustedKeys: ['/k.pub'] };
    expect(parseConfig({ ...base, metricsTextfile: '/var/lib/node-exporter/otaab.prom' }, '/etc/otaab/agent.json').metricsTextfile).toBe('/var/lib/node-exporter/otaab.prom');
    expect(() => parseConfig({ ...base, metricsTextfile: '/tmp/otaab.txt' }, '/etc/otaab/agent.json')).toThrow(/metricsTextfile.*\.prom/);
  });
});
