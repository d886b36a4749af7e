/** rolled-back: running on the restore slot; the bootloader was set on the way here. */
import type { Handler } from '../runner.js';

/** The rolled-back handler. */
export const rolledBack: Handler = async () => ({ outcome: 'done' });
