#!/usr/bin/env node
/** `ota-server`: runs the otaab server and administers its tokens and key. */
import { main } from '../shared/cli.js';
import { commands } from './commands/index.js';

main('ota-server', 'Run the otaab update server: signed releases in, signed check-in directives out.', commands);
