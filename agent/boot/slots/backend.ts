/** The slot backend for a configured slot. */
import type { SlotConfig } from '../../config/types.js';
import { FsSlot } from './fs.js';
import { RawSlot } from './raw.js';
import type { SlotBackend } from './types.js';

/** A raw or fs backend, as the slot's kind says. */
export function slotBackend(config: SlotConfig): SlotBackend {
  return config.kind === 'raw' ? new RawSlot(config) : new FsSlot(config);
}
