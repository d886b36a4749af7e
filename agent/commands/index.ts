/** Every ota-agent sub-command, in the order `--help` lists them. */
import type { Command } from '../../shared/cli.js';
import { checkCommand } from './check.js';
import { daemonCommand } from './daemon.js';
import { enrollCommand } from './enroll.js';
import { historyCommand } from './history.js';
import { installCommand } from './install.js';
import { markBadCommand, markGoodCommand } from './mark.js';
import { rollbackCommand } from './rollback.js';
import { statusCommand } from './status.js';

/** The commands. */
export const commands: Command[] = [
  statusCommand,
  installCommand,
  rollbackCommand,
  markGoodCommand,
  markBadCommand,
  historyCommand,
  daemonCommand,
  enrollCommand,
  checkCommand,
];
