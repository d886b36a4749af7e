#!/usr/bin/env node
/** `ota-release`: the ops tool that makes, checks, uploads and publishes signed bundles. */
import { main } from '../shared/cli.js';
import { commands } from './commands/index.js';

main('ota-release', 'Build, sign, inspect and verify otaab bundles; upload and publish them to an otaab server.', commands);
