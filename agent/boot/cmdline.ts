/** Which slot the running system was booted from: `ota.slot=X` on the kernel command line. */
import { readFile } from 'node:fs/promises';
import { OtaError, errorMessage } from '../../shared/errors.js';
import type { SlotName } from '../config/types.js';

/** Parses a command line; the last `ota.slot=` wins, as the kernel's own parameters do. */
export function parseBootedSlot(cmdline: string): SlotName | undefined {
  let slot: SlotName | undefined;
  for (const word of cmdline.trim().split(/\s+/)) {
    if (word === 'ota.slot=A') slot = 'A';
    else if (word === 'ota.slot=B') slot = 'B';
    else if (word.startsWith('ota.slot=')) slot = undefined;
  }
  return slot;
}

/** Reads the booted slot from `path` (normally /proc/cmdline). */
export async function readBootedSlot(path: string): Promise<SlotName> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new OtaError('BOOTED_SLOT_UNKNOWN', `cannot read the kernel command line from ${path} (${errorMessage(cause)})`, { cause });
  }
  const slot = parseBootedSlot(text);
  if (!slot) throw new OtaError('BOOTED_SLOT_UNKNOWN', `${path} has no ota.slot=A or ota.slot=B (it reads "${text.trim().slice(0, 200)}")`);
  return slot;
}
