/**
 * The GRUB hang scenario of the qemu boot test: slot B's userspace arms qemu's i6300esb
 * watchdog (Debian's generic amd64 kernel: watchdog.ko, then i6300esb.ko) and hangs. Only
 * the watchdog's reset ends each boot; GRUB counted the try before the kernel started, so
 * after MAX_TRIES it falls back to A (the cloud kernel, as in the other GRUB scenarios).
 */
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_ENV } from '../sim/grubenv.js';
import { AMD64_GENERIC, ensureDebKernel } from './deb-kernel.js';
import { assembleDisk, buildCoreImage, buildSlotImage, diskLayout, editDiskEnv, readDiskEnv } from './disk.js';
import { BUSYBOX, initScript } from './initramfs.js';
import { buildInitramfsWith, hangInitScript } from './initramfs-any.js';
import { buildGrubBootPartition } from './grub-boot.js';
import { runQemu } from './run-qemu.js';
import { cmdlineSlot, parseTrace } from './trace.js';
import type { BootJob, JobOutcome } from './uboot-suite.js';

// MAX_TRIES=2: the generic kernel takes several times the cloud kernel's boot time under TCG
// (its load alone took over a minute on a busy host), so two hangs show the counting at half
// the cost of three.
const EXPECTED = { choices: ['B1', 'B2', 'A1'], env: { ...DEFAULT_ENV, MAX_TRIES: '2', ORDER: 'B A', A_TRY: '1', B_TRY: '2' } };

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sorted(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).sort(([a], [b]) => a.localeCompare(b)));
}

/** The GRUB hang job; `cloudKernel` boots slot A. */
export async function grubHangJobs(work: string, cacheDir: string, cloudKernel: string, opts: { perBootMs: number; keep: boolean; log: (s: string) => void }): Promise<BootJob[]> {
  const generic = await ensureDebKernel(cacheDir, AMD64_GENERIC, opts.log);
  const dir = join(work, 'grub-hang');
  await mkdir(dir);
  const initA = join(dir, 'initrd-A.img');
  const initB = join(dir, 'initrd-B-hang.img');
  const coreImg = join(dir, 'core.img');
  await Promise.all([
    buildInitramfsWith(initA, BUSYBOX, initScript('A', 'good')),
    buildInitramfsWith(initB, BUSYBOX, hangInitScript('B', generic.modules), generic.modules),
    buildCoreImage(coreImg),
  ]);
  const biggest = Math.max((await stat(cloudKernel)).size, (await stat(generic.image)).size);
  const layout = diskLayout(Math.ceil(biggest * 1.25) + (8 << 20));
  const slots = { A: { kernel: cloudKernel, initrd: initA }, B: { kernel: generic.image, initrd: initB } };
  const images: Record<string, string> = {};
  for (const [name, s] of Object.entries(slots)) {
    const tree = join(dir, `slot-${name}`);
    await mkdir(join(tree, 'boot'), { recursive: true });
    await copyFile(s.kernel, join(tree, 'boot', 'vmlinuz'));
    await copyFile(s.initrd, join(tree, 'boot', 'initrd.img'));
    images[name] = join(dir, `slot-${name}.ext4`);
    await buildSlotImage(images[name]!, tree, layout.A.size);
  }
  const bootPart = await buildGrubBootPartition(dir, layout);
  const disk = join(dir, 'disk.img');
  await assembleDisk(disk, layout, { coreImg, boot: bootPart, A: images.A!, B: images.B! });

  const run = async (): Promise<JobOutcome> => {
    // What the agent writes when it arms a freshly installed slot B (DESIGN §6 step 3).
    await editDiskEnv(disk, layout, dir, { B_OK: '1', B_TRY: '0', ORDER: 'B A', MAX_TRIES: '2' });
    const logPath = join(dir, 'serial.log');
    const r = await runQemu(disk, { perBootMs: 3 * opts.perBootMs, maxBoots: EXPECTED.choices.length + 2 }, logPath, ['-device', 'i6300esb', '-action', 'watchdog=reset']);
    const trace = parseTrace(r.log);
    const problems: string[] = [];
    const want = (what: string, got: unknown, expected: unknown) => {
      if (!same(got, expected)) problems.push(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
    };
    if (r.killed) problems.push(`qemu was killed: ${r.killed}`);
    want('GRUB choices', trace.choices, EXPECTED.choices);
    want('hangs (watchdog armed, then silence)', (r.log.match(/OTA-INIT: slot B armed the watchdog and hangs/g) ?? []).length, 2);
    want('kernel panics', trace.panics, 0);
    want('slot whose initrd came up', trace.initsUp, ['A']);
    want('ota.slot on the kernel command line', cmdlineSlot(trace.cmdlines.at(-1) ?? ''), 'A');
    try {
      want('grubenv read back from the disk', sorted(await readDiskEnv(disk, layout, dir)), sorted(EXPECTED.env));
    } catch (e) {
      problems.push(`cannot read grubenv back: ${(e as Error).message}`);
    }
    if (problems.length === 0 && !opts.keep) await rm(disk, { force: true });
    return { problems, seconds: r.seconds, choices: trace.choices, logPath };
  };
  return [{ id: 'h-b-hangs', bootloader: 'GRUB', title: '(h) B arms the watchdog and hangs: each reset is a try, MAX_TRIES=2, then A', run }];
}
