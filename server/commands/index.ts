/** Every ota-server sub-command, in the order `--help` lists them. */
import type { Command } from '../../shared/cli.js';
import { backupCommand } from './backup.js';
import { initCommand } from './init.js';
import { keyCommand } from './key.js';
import { startCommand } from './start.js';
import { tokenCommand } from './token.js';

/** The commands. */
export const commands: Command[] = [initCommand, startCommand, tokenCommand, keyCommand, backupCommand];
