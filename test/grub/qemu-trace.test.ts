// The qemu boot test's judge: reading a serial log and holding it against a scenario.
// A checker that passes everything would make `npm run test:boot` worthless, so each
// check is shown to fail on a log that breaks it.
import { describe, expect, it } from 'vitest';
import { checkScenario, SCENARIOS } from '../../scripts/qemu/scenarios.js';
import { cmdlineSlot, parseTrace } from '../../scripts/qemu/trace.js';
import { kernelPackageFrom } from '../../scripts/qemu/kernel.js';
import { diskLayout } from '../../scripts/qemu/disk.js';

// Shaped like a real run of scenario (c): three panics in B, then A comes up.
const PANIC_LOG = [
  ...[1, 2, 3].flatMap((n) => [
    `ota: slot B, attempt ${n} of 3`,
    'ota: loading (hd0,msdos3)/boot/vmlinuz',
    'OTA-INIT: slot B userspace is broken, init exits',
    '[    1.05] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100',
    '[    1.06] Rebooting in 1 seconds..',
  ]),
  '      [ grubenv  1.00KiB  100% ]ota: slot A, attempt 1 of 3',
  'ota: loading (hd0,msdos2)/boot/vmlinuz',
  'OTA-INIT: slot A userspace is up',
  'OTA-CMDLINE: BOOT_IMAGE=(hd0,msdos2)/boot/vmlinuz root=/dev/sda2 console=ttyS0,115200 panic=1 quiet ota.slot=A',
  '[    1.31] reboot: Power down',
].join('\n');

const scenarioC = SCENARIOS.find((s) => s.id === 'c-b-panics')!;
const envC = { ORDER: 'B A', A_OK: '1', B_OK: '1', A_TRY: '1', B_TRY: '3', MAX_TRIES: '3' };

describe('parseTrace', () => {
  it('reads choices, panics, inits and the command line', () => {
    expect(parseTrace(PANIC_LOG)).toEqual({
      choices: ['B1', 'B2', 'B3', 'A1'],
      maxTries: [3, 3, 3, 3],
      resets: 0,
      loadFailures: [],
      panics: 3,
      initsUp: ['A'],
      initsBroken: ['B', 'B', 'B'],
      cmdlines: ['BOOT_IMAGE=(hd0,msdos2)/boot/vmlinuz root=/dev/sda2 console=ttyS0,115200 panic=1 quiet ota.slot=A'],
    });
  });

  it('reads resets and load failures', () => {
    const t = parseTrace('ota: no slot is OK with tries left, resetting A_TRY and B_TRY\nota: slot B did not load, rebooting\n');
    expect([t.resets, t.loadFailures]).toEqual([1, ['B']]);
  });

  it('cmdlineSlot wants exactly one valid ota.slot', () => {
    expect(cmdlineSlot('root=/dev/sda2 ota.slot=B quiet')).toBe('B');
    expect(cmdlineSlot('root=/dev/sda2 quiet')).toBeNull();
    expect(cmdlineSlot('ota.slot=A ota.slot=B')).toBeNull();
    expect(cmdlineSlot('ota.slot=C')).toBeNull();
    expect(cmdlineSlot('xota.slot=A')).toBeNull();
  });
});

describe('checkScenario', () => {
  it('passes the log and env of a correct run', () => {
    expect(checkScenario(scenarioC, parseTrace(PANIC_LOG), envC)).toEqual([]);
  });

  it.each([
    ['a slot tried once too often', PANIC_LOG.replace('ota: slot A, attempt 1 of 3', 'ota: slot B, attempt 4 of 3\nota: slot A, attempt 1 of 3'), envC, /GRUB choices/],
    ['the wrong slot on the command line', PANIC_LOG.replace('ota.slot=A', 'ota.slot=B'), envC, /ota\.slot/],
    ['an initrd from the other slot', PANIC_LOG.replace('slot A userspace is up', 'slot B userspace is up'), envC, /initrd came up/],
    ['a missing panic', PANIC_LOG.replace('Kernel panic', 'Kernel oops'), envC, /kernel panics/],
    ['no command line printed', PANIC_LOG.replace(/OTA-CMDLINE.*\n/, ''), envC, /command lines printed/],
    ['a counter not saved', PANIC_LOG, { ...envC, B_TRY: '2' }, /grubenv read back/],
    ['another root= for the slot', PANIC_LOG.replace('root=/dev/sda2', 'root=/dev/sda3'), envC, /root=/],
  ])('fails on %s', (_name, log, env, problem) => {
    const problems = checkScenario(scenarioC, parseTrace(log), env);
    expect(problems.some((p) => problem.test(p)), problems.join('\n')).toBe(true);
  });

  it('covers the issue scenarios (a) to (d)', () => {
    expect(SCENARIOS.map((s) => s.title.slice(0, 3)).sort()).toEqual(['(a)', '(b)', '(c)', '(d)', '(e)', '(f)']);
  });
});

describe('qemu helpers', () => {
  it('finds the versioned kernel behind the meta-package', () => {
    const out = 'linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n';
    expect(kernelPackageFrom(out)).toBe('linux-image-6.1.0-56-cloud-amd64');
    expect(kernelPackageFrom('linux-image-cloud-amd64\n')).toBeNull();
  });

  it('lays partitions out MiB-aligned, one after the other', () => {
    const l = diskLayout(20_000_000);
    expect(l.boot).toEqual({ offset: 1 << 20, size: 8 << 20 });
    expect(l.A.size).toBe(20 << 20);
    expect(l.B.offset).toBe(l.A.offset + l.A.size);
    expect(l.total).toBeGreaterThan(l.B.offset + l.B.size - 1);
  });
});
