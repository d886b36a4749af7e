/**
 * The qemu boot test (`npm run test:boot`): real SeaBIOS, real GRUB from grub/grub.cfg, a
 * real Debian cloud kernel, two slots, and the fallback when a slot's kernel panics or
 * cannot be loaded. Each scenario boots its own copy of the disk; two run at a time.
 * Exit 0 when every scenario passes, 1 otherwise.
 */
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { repoRoot } from './sim/paths.js';
import { tool } from './sim/tools.js';
import { ensureKernel } from './qemu/kernel.js';
import { buildInitramfs, initScript } from './qemu/initramfs.js';
import {
  assembleDisk, buildCoreImage, buildSlotImage, diskLayout, editDiskEnv, I386_PC, readDiskEnv, writeAt,
} from './qemu/disk.js';
import { buildGrubBootPartition } from './qemu/grub-boot.js';
import { runQemu } from './qemu/run-qemu.js';
import { parseTrace } from './qemu/trace.js';
import { requireSystemTools } from './setup/system-tools.js';
import { checkScenario, SCENARIOS, type Scenario, type SlotBContent } from './qemu/scenarios.js';
import { ubootJobs, UBOOT_ARM64, type BootJob } from './qemu/uboot-suite.js';
import { grubHangJobs } from './qemu/grub-hang.js';

const JOBS = Number(process.env['OTAAB_QEMU_JOBS'] ?? 2);
const PER_BOOT_MS = Number(process.env['OTAAB_BOOT_TIMEOUT_MS'] ?? 120_000);
const KEEP = process.env['OTAAB_QEMU_KEEP'] === '1';

interface Outcome {
  scenario: Scenario;
  problems: string[];
  seconds: number;
  choices: string[];
  logPath: string;
}

function preflight(): void {
  for (const name of ['qemu-system-x86_64', 'grub-mkimage', 'grub-editenv', 'mkfs.fat', 'mcopy', 'mmd', 'sfdisk', 'mkfs.ext4', 'cpio']) tool(name);
  if (!existsSync(join(I386_PC, 'boot.img'))) throw new Error(`${I386_PC}/boot.img not found: install the Debian package grub-pc-bin`);
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Builds everything once: slot images for every variant and a base disk (A good, B good). */
async function buildArtifacts(work: string, kernel: string) {
  const initrds = { A: join(work, 'initrd-A.img'), B: join(work, 'initrd-B.img'), Bpanic: join(work, 'initrd-B-panic.img') };
  const coreImg = join(work, 'core.img');
  await Promise.all([
    buildInitramfs(initrds.A, initScript('A', 'good')),
    buildInitramfs(initrds.B, initScript('B', 'good')),
    buildInitramfs(initrds.Bpanic, initScript('B', 'panic')),
    buildCoreImage(coreImg),
  ]);

  const kernelSize = (await stat(kernel)).size;
  // Room for kernel, initrd and ext4's own metadata.
  const layout = diskLayout(Math.ceil(kernelSize * 1.25) + (8 << 20));
  const trees: Record<'A' | SlotBContent, { initrd: string | null; kernel: boolean }> = {
    A: { initrd: initrds.A, kernel: true },
    good: { initrd: initrds.B, kernel: true },
    panic: { initrd: initrds.Bpanic, kernel: true },
    'no-kernel': { initrd: initrds.B, kernel: false },
    'no-initrd': { initrd: null, kernel: true },
  };
  const images = {} as Record<'A' | SlotBContent, string>;
  await Promise.all(Object.entries(trees).map(async ([name, t]) => {
    const tree = join(work, `slot-${name}`);
    await mkdir(join(tree, 'boot'), { recursive: true });
    if (t.kernel) await copyFile(kernel, join(tree, 'boot', 'vmlinuz'));
    if (t.initrd) await copyFile(t.initrd, join(tree, 'boot', 'initrd.img'));
    const image = join(work, `slot-${name}.ext4`);
    await buildSlotImage(image, tree, layout.A.size);
    images[name as 'A' | SlotBContent] = image;
  }));

  const bootPart = await buildGrubBootPartition(work, layout);
  const baseDisk = join(work, 'base.img');
  await assembleDisk(baseDisk, layout, { coreImg, boot: bootPart, A: images.A, B: images.good });
  return { layout, images, baseDisk };
}

async function runScenario(work: string, art: Awaited<ReturnType<typeof buildArtifacts>>, s: Scenario): Promise<Outcome> {
  const dir = join(work, s.id);
  await mkdir(dir);
  const disk = join(dir, 'disk.img');
  const logPath = join(dir, 'serial.log');
  await copyFile(art.baseDisk, disk);
  if (s.slotB !== 'good') await writeAt(disk, art.layout.B.offset, art.images[s.slotB]);
  if (Object.keys(s.envEdits).length > 0) await editDiskEnv(disk, art.layout, dir, s.envEdits);

  const run = await runQemu(disk, { perBootMs: PER_BOOT_MS, maxBoots: s.choices.length + 2 }, logPath);
  const trace = parseTrace(run.log);
  const problems: string[] = [];
  if (run.killed === 'boot-timeout') problems.push(`a boot took longer than ${PER_BOOT_MS / 1000} s: qemu was killed`);
  if (run.killed === 'boot-loop') problems.push(`GRUB chose a slot more than ${s.choices.length + 2} times: qemu was killed`);
  let env: Record<string, string> = {};
  try {
    env = await readDiskEnv(disk, art.layout, dir);
  } catch (e) {
    problems.push(`cannot read grubenv back from the disk: ${(e as Error).message}`);
  }
  problems.push(...checkScenario(s, trace, env));
  if (problems.length === 0 && !KEEP) await rm(disk, { force: true });
  return { scenario: s, problems, seconds: run.seconds, choices: trace.choices, logPath };
}

async function main(): Promise<number> {
  const started = Date.now();
  requireSystemTools('boot');
  // OTAAB_BOOT_SUITES=grub or =uboot runs one bootloader's scenarios only.
  const suites = (process.env['OTAAB_BOOT_SUITES'] ?? 'grub,uboot').split(',');
  const cacheDir = join(repoRoot(), '.cache', 'qemu');
  const work = await mkdtemp(join(tmpdir(), 'otaab-qemu-'));
  const jobs: BootJob[] = [];
  if (suites.includes('grub')) {
    preflight();
    const kernel = await ensureKernel(cacheDir, (s) => console.log(s));
    console.log(`GRUB: ${basename(kernel)}, ${SCENARIOS.length} scenarios`);
    const art = await buildArtifacts(work, kernel);
    for (const s of SCENARIOS) {
      jobs.push({ id: s.id, bootloader: 'GRUB', title: s.title, run: () => runScenario(work, art, s) });
    }
    jobs.push(...(await grubHangJobs(work, cacheDir, kernel, { perBootMs: PER_BOOT_MS, keep: KEEP, log: (s) => console.log(s) })));
  }
  if (suites.includes('uboot')) {
    const ub = await ubootJobs(work, cacheDir, { perBootMs: PER_BOOT_MS, keep: KEEP, log: (s) => console.log(s) });
    console.log(`U-Boot: ${UBOOT_ARM64} on qemu-system-aarch64 -M virt, Debian's generic arm64 kernel, ${ub.length} scenarios`);
    jobs.push(...ub);
  }
  // The slowest first, so the two lanes end at about the same time.
  jobs.sort((a, b) => slowness(b) - slowness(a));
  console.log(`qemu boot test: ${jobs.length} scenarios, ${JOBS} at a time, work in ${work}; built disk images in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const outcomes = await mapLimit(jobs, JOBS, async (job) => {
    const o = await job.run();
    const status = o.problems.length === 0 ? 'PASS' : 'FAIL';
    console.log(`${status}  ${job.bootloader.padEnd(6)} ${job.title.padEnd(72)} ${o.seconds.toFixed(1).padStart(5)} s  ${job.bootloader}: ${o.choices.join(' ') || '-'}`);
    for (const p of o.problems) console.log(`        ${p}`);
    if (o.problems.length > 0) console.log(`        serial log: ${o.logPath}`);
    return { job, ...o };
  });

  const failed = outcomes.filter((o) => o.problems.length > 0);
  const total = ((Date.now() - started) / 1000).toFixed(1);
  if (failed.length === 0) {
    if (KEEP) console.log(`serial logs kept in ${work}`);
    else await rm(work, { recursive: true, force: true });
    console.log(`PASS: ${outcomes.length}/${outcomes.length} qemu boot scenarios in ${total} s`);
    return 0;
  }
  console.log(`FAIL: ${failed.length} of ${outcomes.length} qemu boot scenarios failed (${failed.map((o) => o.job.id).join(', ')}) in ${total} s; logs kept in ${work}`);
  return 1;
}

/** Rough order of run time: boots expected, a hang or a panic costing more. */
function slowness(job: BootJob): number {
  return (job.id.includes('hang') ? 100 : 0) + (job.id.includes('panic') ? 50 : 0) + (job.bootloader === 'GRUB' ? 10 : 0) + (/no-(kernel|initrd)/.test(job.id) ? 20 : 0);
}

main().then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    console.error(`qemu boot test: ${(e as Error).message}`);
    process.exitCode = 1;
  },
);
