// The rpi-tryboot backend against a directory standing for the mounted FAT boot partition
// and a device-tree directory standing for /proc/device-tree/chosen/bootloader; the written
// autoboot.txt is also put into a real FAT image with mtools and read back. No Raspberry Pi
// firmware runs here: what the firmware does with autoboot.txt is not proven by this test.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAutoboot, readBootFacts, readTrybootSlot, renderAutoboot, TrybootBootloader } from '../../agent/boot/tryboot.js';
import { runReboot } from '../../agent/actions/device.js';
import { parseConfig } from '../../agent/config/load.js';
import { openBootloader } from '../../agent/boot/select.js';
import { tool } from '../../scripts/sim/tools.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const PARTS = { A: 2, B: 3 };
const FIRST_BOOT = '[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n';

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

async function pi(autoboot = FIRST_BOOT) {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-tryboot-'));
  dirs.push(dir);
  const boot = join(dir, 'firmware');
  const dt = join(dir, 'dt');
  await mkdir(boot);
  await mkdir(dt);
  await writeFile(join(boot, 'autoboot.txt'), autoboot);
  const bootFacts = async (partition: number, tryboot: number) => {
    await writeFile(join(dt, 'partition'), u32(partition));
    await writeFile(join(dt, 'tryboot'), u32(tryboot));
  };
  await bootFacts(2, 0);
  const bl = new TrybootBootloader({ autoboot: join(boot, 'autoboot.txt'), partitions: PARTS, deviceTree: dt, trybootCommand: ['true', 'tryboot-requested'] });
  return { dir, boot, dt, bl, bootFacts, text: () => readFile(join(boot, 'autoboot.txt'), 'utf8') };
}

describe('rpi-tryboot backend', () => {
  it('reads a hand-written autoboot.txt as A first, both bootable', async () => {
    const p = await pi();
    expect(await p.bl.env()).toEqual({ ORDER: 'A B', A_OK: '1', B_OK: '1', A_TRY: '0', B_TRY: '0', MAX_TRIES: '1', DEFAULT: 'A', TRY: 'B', TRYBOOT: '0' });
    expect(await p.bl.getPrimary()).toBe('A');
    expect(await readTrybootSlot({ deviceTree: p.dt, partitions: PARTS })).toBe('A');
  });

  it('an update: arm B, count the try at the tryboot reboot, boot B once, commit B as the default', async () => {
    const p = await pi();
    await p.bl.setPrimary('B');
    let s = parseAutoboot(await p.text(), PARTS, 'x');
    // Armed: the default stays A, so any reset before the commit comes back to A.
    expect(s).toMatchObject({ def: 'A', trySlot: 'B', order: ['B', 'A'], tries: { A: 0, B: 0 } });
    expect(await p.bl.getPrimary()).toBe('B');
    expect(await p.bl.rebootCommand()).toEqual(['true', 'tryboot-requested']);
    expect(await p.bl.getState('B')).toEqual({ ok: true, tries: 1 });
    // The try is spent: another reboot is a normal one.
    expect(await p.bl.rebootCommand()).toBeUndefined();
    await p.bootFacts(3, 1);
    expect(await readTrybootSlot({ deviceTree: p.dt, partitions: PARTS })).toBe('B');
    expect(await readBootFacts(p.dt)).toEqual({ partition: 3, tryboot: true });
    expect((await p.bl.env()).TRYBOOT).toBe('1');
    await p.bl.setState('B', 'good');
    s = parseAutoboot(await p.text(), PARTS, 'x');
    expect(s).toMatchObject({ def: 'B', trySlot: 'B', tries: { B: 0 } });
    expect(await p.text()).toContain('[all]\ntryboot_a_b=1\nboot_partition=3\n');
    expect(await p.bl.getPrimary()).toBe('B');
  });

  it('a try that crashed: the firmware is back on A with B_TRY=1, and the rollback keeps A the default', async () => {
    const p = await pi();
    await p.bl.setPrimary('B');
    await p.bl.rebootCommand();
    // Back on A after B's one try (panic, watchdog, power): the agent sees B tried.
    expect(await p.bl.getState('B')).toEqual({ ok: true, tries: 1 });
    await p.bl.setPrimary('A', { disableOther: true });
    const s = parseAutoboot(await p.text(), PARTS, 'x');
    expect(s).toMatchObject({ def: 'A', trySlot: 'A', ok: { A: true, B: false } });
    expect(await p.bl.rebootCommand()).toBeUndefined();
    // The daemon's assessment of a healthy boot on A changes nothing.
    const before = await p.text();
    await p.bl.setState('A', 'good');
    expect(await p.text()).toBe(before);
  });

  it('marking the default slot bad moves the default to the other slot', async () => {
    const p = await pi();
    await p.bl.setState('A', 'bad');
    expect(parseAutoboot(await p.text(), PARTS, 'x')).toMatchObject({ def: 'B', trySlot: 'B' });
  });

  it('replaces autoboot.txt by rename, leaves no temp file, and fits the firmware\'s 512 bytes', async () => {
    const p = await pi();
    await p.bl.setPrimary('B');
    await p.bl.rebootCommand();
    expect(await readdir(p.boot)).toEqual(['autoboot.txt']);
    expect(Buffer.byteLength(await p.text())).toBeLessThanOrEqual(512);
  });

  it('the file survives a FAT file system: mcopy in, mtype out, same state', async () => {
    const p = await pi();
    await p.bl.setPrimary('B');
    const img = join(p.dir, 'boot.fat');
    await execa(tool('mkfs.fat'), ['-C', '-F', '16', '-s', '2', img, '8192'], { stdin: 'ignore' });
    const env = { MTOOLS_SKIP_CHECK: '1' };
    await execa(tool('mcopy'), ['-i', img, join(p.boot, 'autoboot.txt'), '::/autoboot.txt'], { stdin: 'ignore', env });
    const { stdout } = await execa(tool('mtype'), ['-i', img, '::/autoboot.txt'], { stdin: 'ignore', env });
    expect(parseAutoboot(stdout, PARTS, 'fat')).toEqual(parseAutoboot(await p.text(), PARTS, 'dir'));
  });

  it('refuses an autoboot.txt naming an unknown partition, and a device tree without a partition', async () => {
    const p = await pi('[all]\ntryboot_a_b=1\nboot_partition=5\n');
    await expect(p.bl.env()).rejects.toMatchObject({ code: 'BOOTENV_FAILED', message: expect.stringContaining('boot_partition is 5') });
    await rm(join(p.dt, 'partition'));
    await expect(readTrybootSlot({ deviceTree: p.dt, partitions: PARTS })).rejects.toMatchObject({ code: 'BOOTED_SLOT_UNKNOWN' });
  });

  it('renders what it parses', () => {
    const s = parseAutoboot(FIRST_BOOT, PARTS, 'x');
    expect(parseAutoboot(renderAutoboot(s, PARTS), PARTS, 'x')).toEqual(s);
  });

  it('the agent reboots with the tryboot command when a try is pending (runReboot)', async () => {
    const p = await pi();
    const log = join(p.dir, 'reboots');
    const config = parseConfig({
      device: { id: 'pi', compatible: 'pi4' },
      slots: [{ name: 'A', kind: 'fs', path: join(p.dir, 'a') }, { name: 'B', kind: 'fs', path: join(p.dir, 'b') }],
      boot: { bootloader: 'rpi-tryboot', autoboot: join(p.boot, 'autoboot.txt'), deviceTree: p.dt, trybootCommand: ['sh', '-c', `echo tryboot >> ${log}`] },
      rebootCommand: ['sh', '-c', `echo normal >> ${log}`],
      trustedKeys: ['k.asc'],
    }, join(p.dir, 'agent.json'));
    // The backend the config selects, so the tryboot command is the harmless one above.
    const bl = openBootloader(config);
    await bl.setPrimary('B');
    await runReboot(config, bl);
    await runReboot(config, bl);
    expect(await readFile(log, 'utf8')).toBe('tryboot\nnormal\n');
  });
});
