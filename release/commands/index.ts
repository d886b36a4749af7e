/** Every ota-release sub-command, in the order `--help` lists them. */
import type { Command } from '../../shared/cli.js';
import { keygenCommand } from './keygen.js';

export const commands: Command[] = [keygenCommand];
