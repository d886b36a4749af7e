/** Runs a slot's mount command before and its unmount command after using it. */
import { runTool } from '../../../shared/run-tool.js';
import { OtaError, errorMessage } from '../../../shared/errors.js';
import type { SlotConfig } from '../../config/types.js';

async function runCommand(argv: readonly string[], what: string): Promise<void> {
  try {
    await runTool(argv[0]!, argv.slice(1), { timeoutMs: 120_000 });
  } catch (cause) {
    const detail = (cause as { stderr?: string }).stderr?.trim() || errorMessage(cause);
    throw new OtaError('SLOT_MOUNT_FAILED', `${what}: ${argv.join(' ')} failed (${detail})`, { cause });
  }
}

/**
 * Mounts each slot (in order), runs `fn`, then unmounts them (in reverse) even when `fn`
 * failed; an unmount failure after a failed `fn` does not hide the first error.
 */
export async function withMounted<T>(slots: readonly SlotConfig[], fn: () => Promise<T>): Promise<T> {
  const mounted: SlotConfig[] = [];
  let result: T;
  try {
    for (const s of slots) {
      if (s.mount) await runCommand(s.mount, `slot ${s.name}: mount`);
      mounted.push(s);
    }
    result = await fn();
  } catch (err) {
    for (const s of mounted.reverse()) if (s.unmount) await runCommand(s.unmount, `slot ${s.name}: unmount`).catch(() => undefined);
    throw err;
  }
  for (const s of mounted.reverse()) if (s.unmount) await runCommand(s.unmount, `slot ${s.name}: unmount`);
  return result;
}
