/** Each state's handler (one file each in this folder). */
import type { Handler } from '../runner.js';
import type { State } from '../states.js';
import { armed } from './armed.js';
import { committed } from './committed.js';
import { downloading } from './downloading.js';
import { failed } from './failed.js';
import { installed } from './installed.js';
import { rebooting } from './rebooting.js';
import { rolledBack } from './rolled-back.js';
import { rollingBack } from './rolling-back.js';
import { verifying } from './verifying.js';

/** State → handler. */
export const HANDLERS: Readonly<Record<State, Handler>> = {
  downloading,
  installed,
  armed,
  rebooting,
  verifying,
  committed,
  'rolling-back': rollingBack,
  'rolled-back': rolledBack,
  failed,
};
