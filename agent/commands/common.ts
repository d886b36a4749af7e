/** What every ota-agent command shares: the --config option and opening the device. */
import { clearProgressLine } from '../../shared/cli.js';
import { openDevice, type Device } from '../actions/device.js';

/** The --config option every command takes. */
export const configOption = { config: { type: 'string', short: 'c' } } as const;

/** Help text for --config. */
export const CONFIG_HELP = '  --config PATH  agent config (default: $OTA_AGENT_CONFIG, else /etc/otaab/agent.json)';

/** Opens the device named by --config, runs `fn`, closes it. */
export async function withDevice<T>(values: Record<string, unknown>, fn: (dev: Device) => Promise<T>): Promise<T> {
  const dev = await openDevice(typeof values.config === 'string' ? values.config : undefined);
  try {
    return await fn(dev);
  } finally {
    dev.close();
  }
}

/** Operator messages go to stderr, so stdout stays for --json. */
export function log(line: string): void {
  // A download's progress bar may own the current line: start the message on a clean one.
  clearProgressLine();
  process.stderr.write(`${line}\n`);
}
