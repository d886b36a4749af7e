/**
 * The device test's pure parts: docs/AGENT.md's set-up block (the image build runs exactly it)
 * is found and is valid shell, and the power-cut points cover the trace as promised.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { docsSetupBlock } from '../../scripts/device/image.js';
import { pickPoints } from '../../scripts/device/points.js';
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
  const add = (kind: string, what: string, at: number) => trace.push({ n: trace.length + 1, kind, what, at });
  add('enrollment', 'server.json', 1000);
  for (let i = 0; i < 12; i++) add('slot-sync', `B ${i}`, 2000 + i * 1000);
  add('store', 'installed', 15_000);
  add('grubenv', 'arm B', 15_100);
  add('report-sent', 'rebooting', 15_200);
  add('store', 'verifying', 90_000);
  add('grubenv', 'B_TRY=0', 91_000);
  add('store', 'committed', 91_100);
  add('report-sent', 'success', 92_000);

  it('picks at least the count asked for, every grubenv write and the reboot', () => {
    const points = pickPoints(trace, 20);
    expect(points.length).toBeGreaterThanOrEqual(20);
    for (const l of trace.filter((x) => x.kind === 'grubenv')) expect(points.some((p) => p.n === l.n && p.delayMs === 0)).toBe(true);
    // The reboot is the longest pause: after the report before it, cut a few seconds in.
    expect(points.filter((p) => p.n === 16 && p.delayMs > 0).length).toBe(3);
    for (const p of points) expect(p.n).toBeGreaterThanOrEqual(1);
    expect(new Set(points.map((p) => `${p.n}+${p.delayMs}`)).size).toBe(points.length);
  });

  it('keeps to a maximum when one is given (--ci)', () => {
    const points = pickPoints(trace, 4, 4);
    expect(points).toHaveLength(4);
    expect(new Set(points.map((p) => `${p.n}+${p.delayMs}`)).size).toBe(4);
  });
});
