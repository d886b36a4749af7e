/**
 * The device test's pure parts: docs/AGENT.md's set-up block (the image build runs exactly it)
 * is found and is valid shell, and the power-cut points cover the trace as promised.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config/load.js';
import { docsSetupBlock } from '../../scripts/device/image.js';
import { CI_POINTS, FULL_POINTS, namedTrace, parsePoint, pickPoints, pointName, PointWatch, writeClass } from '../../scripts/device/points.js';
import type { TraceLine } from '../../scripts/device/vm.js';

describe('device image set-up block', () => {
  it('is in docs/AGENT.md between the markers and parses as shell', async () => {
    const block = docsSetupBlock();
    expect(block).toMatch(/^dpkg -i \/tmp\/otaab-setup\/otaab-agent\.deb$/m);
    expect(block).toMatch(/systemctl enable .*otaab-agent\.service/);
    const r = await execa('sh', ['-n'], { input: block, reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
  });
});

describe('power-cut points', () => {
  const trace: TraceLine[] = [];
  const tx = 'b6f8aa3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
  const add = (kind: string, what: string, at: number) => trace.push({ n: trace.length + 1, kind, what, at });
  add('grubenv', 'mark A good: A_OK=1 A_TRY=0', 500);
  add('enrollment', 'enrollment of qemu-update at http://10.0.2.2:41234', 1000);
  add('store', `start transaction ${tx} in downloading`, 1500);
  add('grubenv', 'mark B bad: B_OK=0', 1600);
  for (let i = 0; i < 12; i++) {
    add('slot-sync', `slot B at ${(i + 1) * 8388608}`, 2000 + i * 1000);
    add('store', `transaction ${tx}: ${(i + 1) * 8388608} slot bytes durable`, 2100 + i * 1000);
  }
  add('store', `transaction ${tx}: downloading -> armed`, 15_000);
  add('grubenv', 'make B primary: ORDER=B A B_OK=1 B_TRY=0', 15_100);
  add('store', `transaction ${tx}: armed -> rebooting`, 15_150);
  add('report-sent', 'report 0c1d2e3f-4a5b-4e5f-8a9b-b6f8aa3e1c2d sent', 15_200);
  add('store', `transaction ${tx}: health checks`, 90_000);
  add('grubenv', 'mark B good: B_OK=1 B_TRY=0', 91_000);
  add('store', `transaction ${tx}: finished verifying`, 91_100);
  add('report-sent', 'report 1d2e3f4a-5b6c-4e5f-8a9b-b6f8aa3e1c2d sent', 92_000);

  it('names a write by its kind, its text without ids or numbers, and its ordinal in that class', () => {
    const named = namedTrace(trace).map((c) => pointName(c.cls, c.ordinal));
    expect(named[0]).toBe('grubenv:mark-a-good#1');
    expect(named[1]).toBe('enrollment:enrollment-of-qemu-update-at#1');
    expect(named[8]).toBe('slot-sync:slot-b-at#3');
    expect(named[9]).toBe('store:transaction-slot-bytes-durable#3');
    expect(named).toContain('store:transaction-armed-to-rebooting#1');
    expect(named).toContain('report-sent:report-sent#2');
    expect(new Set(named).size).toBe(trace.length);
    // The same write in another run (other ids, other sizes) has the same name.
    expect(writeClass({ kind: 'store', what: 'transaction 0123abcd-0000-4000-8000-00000000ffff: 4194304 slot bytes durable' })).toBe('store:transaction-slot-bytes-durable');
  });

  it('parses names back, with seconds after the write', () => {
    expect(parsePoint('store:transaction-armed-to-rebooting#1+8')).toMatchObject({ cls: 'store:transaction-armed-to-rebooting', ordinal: 1, delayMs: 8000, name: 'store:transaction-armed-to-rebooting#1+8' });
    expect(() => parsePoint('42')).toThrow(/<kind>:<write>#<ordinal>/);
    const w = new PointWatch(parsePoint('slot-sync:slot-b-at#2'));
    expect(trace.map((l) => w.hit(l)).indexOf(true)).toBe(6);
  });

  it('picks at least the count asked for, every grubenv write and the reboot', () => {
    const points = pickPoints(trace, 20);
    expect(points.length).toBeGreaterThanOrEqual(20);
    for (const c of namedTrace(trace).filter((x) => x.cls.startsWith('grubenv'))) expect(points.some((p) => p.name === pointName(c.cls, c.ordinal))).toBe(true);
    // The reboot is the longest pause: after the report before it, cut a few seconds in.
    expect(points.filter((p) => p.cls === 'report-sent:report-sent' && p.ordinal === 1 && p.delayMs > 0).map((p) => p.name)).toEqual(['report-sent:report-sent#1+3', 'report-sent:report-sent#1+8', 'report-sent:report-sent#1+20']);
    // A repeating class gets its middle write, never its last (the count drifts).
    expect(points.map((p) => p.name)).toContain('store:transaction-slot-bytes-durable#6');
    expect(new Set(points.map((p) => p.name)).size).toBe(points.length);
  });

  it('keeps to a maximum when one is given', () => {
    const points = pickPoints(trace, 4, 4);
    expect(points).toHaveLength(4);
    expect(new Set(points.map((p) => p.name)).size).toBe(4);
  });

  it('has fixed lists of valid names: 20 or more for the full run, a few for CI', () => {
    expect(FULL_POINTS.length).toBeGreaterThanOrEqual(20);
    for (const n of [...FULL_POINTS, ...CI_POINTS]) expect(parsePoint(n).name).toBe(n);
    expect(new Set(FULL_POINTS).size).toBe(FULL_POINTS.length);
    for (const n of CI_POINTS) expect(FULL_POINTS).toContain(n);
  });

  it('names every fixed point in the recorded trace of an update on the qemu device', async () => {
    // update-trace.json: the trace of a `test:device` update scenario (51 durable writes).
    const golden = JSON.parse(await readFile(new URL('./update-trace.json', import.meta.url), 'utf8')) as TraceLine[];
    const have = new Set(namedTrace(golden).map((c) => pointName(c.cls, c.ordinal)));
    for (const n of FULL_POINTS) expect(have.has(n.replace(/\+\d+$/, '')), n).toBe(true);
    // Picked by count from it, the points spread over every kind of write.
    const kinds = new Set(pickPoints(golden, 20).map((p) => p.cls.split(':')[0]));
    expect([...kinds].sort()).toEqual(['grubenv', 'report-sent', 'slot-sync', 'store']);
  });
});

describe('device provisioning script', () => {
  it('writes a config the agent loads, with device.env\'s FACTORY_VERSION as device.factoryVersion', async () => {
    const block = docsSetupBlock();
    const m = /cat > \/usr\/local\/sbin\/otaab-provision <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(block);
    expect(m?.[1]).toBeDefined();
    const dir = await mkdtemp(join(tmpdir(), 'otaab-provision-'));
    try {
      await writeFile(join(dir, 'server.json'), '{}');
      const script = m![1]!.replaceAll('/boot/ota/device.env', join(dir, 'device.env')).replaceAll('/run/otaab', join(dir, 'run')).replaceAll('/var/lib/otaab/server.json', join(dir, 'server.json'));
      for (const [env, want] of [["FACTORY_VERSION='1.0.0'\n", '1.0.0'], ['', undefined]] as const) {
        await writeFile(join(dir, 'device.env'), `DEVICE_ID='qemu-1'\nSERVER_URL='http://10.0.2.2:1'\nENROLL_TOKEN='t'\nCHANNEL='c'\nPOLL_SECONDS='5'\n${env}`);
        const r = await execa('dash', ['-c', script], { reject: false });
        expect(r.exitCode, String(r.stderr)).toBe(0);
        const raw = JSON.parse(await readFile(join(dir, 'run', 'agent.json'), 'utf8')) as { device: { id: string; factoryVersion?: string } };
        expect(raw.device.id).toBe('qemu-1');
        expect(raw.device.factoryVersion).toBe(want);
        expect(parseConfig(raw, join(dir, 'run', 'agent.json')).device.factoryVersion).toBe(want);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
