/** Every ota-release sub-command, in the order `--help` lists them. */
import type { Command } from '../../shared/cli.js';
import { buildCommand } from './build.js';
import { deviceCommand, devicesCommand, rollbackCommand, tagCommand } from './devices.js';
import { releaseCommand, releasesCommand } from './releases.js';
import { rolloutCommand, windowCommand } from './rollout.js';
import { deltaReportCommand } from './delta-report.js';
import { inspectCommand } from './inspect.js';
import { keygenCommand } from './keygen.js';
import { publishCommand } from './publish.js';
import { uploadCommand } from './upload.js';
import { verifyCommand } from './verify.js';

export const commands: Command[] = [
  keygenCommand,
  buildCommand,
  inspectCommand,
  verifyCommand,
  uploadCommand,
  publishCommand,
  releasesCommand,
  releaseCommand,
  rolloutCommand,
  devicesCommand,
  deviceCommand,
  tagCommand,
  windowCommand,
  rollbackCommand,
  deltaReportCommand,
];
