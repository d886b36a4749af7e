/**
 * The running device as the commands see it: config, store, bootloader and booted slot, and
 * the state machine context built from them. Commands open it once and close it at the end.
 */
import { runTool } from '../../shared/run-tool.js';
import { OtaError, errorMessage } from '../../shared/errors.js';
import type { Bootloader } from '../boot/bootloader.js';
import { openBootloader, readBooted } from '../boot/select.js';
import { loadConnection, type ServerConnection } from '../client/connection.js';
import { configPath, loadConfig } from '../config/load.js';
import type { AgentConfig, SlotName } from '../config/types.js';
import { downloadSettings } from '../download/settings.js';
import type { LiveBundle, MachineContext } from '../machine/context.js';
import { Machine } from '../machine/runner.js';
import { Store } from '../store/store.js';

/** An opened device. */
export interface Device {
  readonly config: AgentConfig;
  readonly store: Store;
  readonly boot: Bootloader;
  readonly booted: SlotName;
  /** The update server (config `server` section and enrollment), if the device has one. */
  readonly server?: ServerConnection;
  close(): void;
}

/** Runs the reboot command; its failure is transient (the transaction resumes at next start). */
export async function runReboot(config: AgentConfig, boot?: Bootloader): Promise<void> {
  const command = (await boot?.rebootCommand?.()) ?? config.rebootCommand;
  const [cmd, ...args] = command;
  try {
    await runTool(cmd!, args, { timeoutMs: 120_000 });
  } catch (cause) {
    const detail = (cause as { stderr?: string }).stderr?.trim() || errorMessage(cause);
    throw new OtaError('REBOOT_FAILED', `reboot command ${command.join(' ')} failed (${detail})`, { cause });
  }
}

/** Loads the config and opens the store, the bootloader and the booted slot. */
export async function openDevice(configOption?: string): Promise<Device> {
  const config = await loadConfig(configPath(configOption));
  const booted = await readBooted(config);
  const server = await loadConnection(config);
  const store = Store.open(config.dataDir);
  return {
    config,
    store,
    booted,
    boot: openBootloader(config),
    ...(server ? { server } : {}),
    close: () => store.close(),
  };
}

/** The state machine for a device. */
export function machineFor(
  dev: Device,
  opts: { live?: LiveBundle; onProgress?: (done: number, total: number | null) => void; log?: (line: string) => void; signal?: AbortSignal; now?: () => Date } = {},
): Machine {
  const ctx: MachineContext = {
    config: dev.config,
    store: dev.store,
    boot: dev.boot,
    booted: dev.booted,
    reboot: () => runReboot(dev.config, dev.boot),
    log: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
    download: downloadSettings(dev.config, dev.server),
    ...(opts.live ? { live: opts.live } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  };
  return new Machine(ctx);
}
