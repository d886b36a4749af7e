#!/usr/bin/env node
/** `ota-agent`: the device agent: daemon and technician commands. */
// First: caps the young generation before anything else allocates (young-generation.ts).
import './infra/young-generation.js';
import { main } from '../shared/cli.js';
import { commands } from './commands/index.js';

main('ota-agent', 'The otaab device agent: installs signed bundles into the inactive A/B slot, verifies the new slot after reboot, commits or rolls back.', commands);
