/** Every ota-server sub-command, in the order `--help` lists them. */
import type { Command } from '../../shared/cli.js';
import { keyCommand } from './key.js';
import { startCommand } from './start.js';
import { tokenCommand } from './token.js';

/** The commands. */
export const commands: Command[] = [startCommand, tokenCommand, keyCommand];
