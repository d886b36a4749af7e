/**
 * Loop devices and process-tree memory for the block-device benchmark: a slot is a loop device
 * over a sparse file (`losetup -f --show`), attached for one run and detached by the name it
 * was given, even when the run fails. Needs root.
 */
import { execa } from 'execa';
import { readFileSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';

/** Creates (or empties) `path` as a sparse file of `bytes`. */
export async function sparseFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
}

/** Attaches `file` to the first free loop device; returns its name (/dev/loopN). */
export async function attachLoop(file: string): Promise<string> {
  const r = await execa('losetup', ['-f', '--show', file]);
  const dev = String(r.stdout).trim();
  if (!/^\/dev\/loop\d+$/.test(dev)) throw new Error(`losetup -f --show ${file} printed ${JSON.stringify(dev)}, not a loop device`);
  return dev;
}

/** Detaches the loop device `dev` (the name attachLoop returned); retries while it is still busy. */
export async function detachLoop(dev: string): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await execa('losetup', ['-d', dev], { reject: false });
    if (r.exitCode === 0) return;
    if (i >= 20) throw new Error(`losetup -d ${dev} failed: ${String(r.stderr)}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** Runs `fn` with loop devices over `files` (in order), detaching each one attached, whatever happens. */
export async function withLoops<T>(files: string[], fn: (devs: string[]) => Promise<T>): Promise<T> {
  const devs: string[] = [];
  try {
    for (const f of files) devs.push(await attachLoop(f));
    return await fn(devs);
  } finally {
    for (const d of devs.reverse()) await detachLoop(d);
  }
}

/** True when this process may use loop devices (root, and losetup present). */
export async function canUseLoops(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const r = await execa('losetup', ['--version'], { reject: false });
  return r.exitCode === 0;
}

/** True when `cmd` is on the PATH. */
export async function have(cmd: string): Promise<boolean> {
  const r = await execa('sh', ['-c', `command -v ${cmd}`], { reject: false });
  return r.exitCode === 0;
}

function kib(status: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
}

/** `pid` and all its descendants now living. */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

/**
 * Polls the RssAnon of `pid`'s process tree (summed) every `everyMs` until stopped; returns
 * the largest sum seen, MiB, and the sample count. `pid` may be a function: the process to
 * watch may be known only once it has started.
 */
export function watchTreeAnon(pid: number | (() => number | undefined), everyMs = 20): () => { maxMiB: number; samples: number } {
  let max = 0;
  let samples = 0;
  const sample = (): void => {
    const root = typeof pid === 'number' ? pid : pid();
    if (root === undefined) return;
    let sum = 0;
    for (const p of tree(root)) {
      try {
        sum += kib(readFileSync(`/proc/${p}/status`, 'utf8'), 'RssAnon');
      } catch {
        // gone
      }
    }
    max = Math.max(max, sum);
    samples++;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    sample();
    return { maxMiB: max / 1024, samples };
  };
}

/** sha256 (hex) of the first `length` bytes of `path`, with OpenSSL. */
export async function sha256Prefix(path: string, length: number): Promise<string> {
  const r = await execa('sh', ['-c', 'head -c "$1" "$2" | openssl dgst -sha256 -r', 'sh', String(length), path]);
  return String(r.stdout).split(' ')[0]!.trim();
}
