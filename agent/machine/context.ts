/** What state handlers work with: the device's config, store, bootloader and running slot. */
import type { BundleReader } from '../../shared/bundle-reader.js';
import type { Bootloader } from '../boot/bootloader.js';
import type { AgentConfig, SlotConfig, SlotName } from '../config/types.js';
import type { DownloadSettings } from '../download/settings.js';
import type { Store } from '../store/store.js';
import type { DeltaStart } from '../delta/start.js';

/** A bundle already opened (and its signature verified) by whoever started the transaction. */
export interface LiveBundle {
  readonly reader: BundleReader;
  /** Bundle bytes read so far. */
  bytesRead(): number;
  /** Set when the install goes by delta (its head already read and verified). */
  readonly delta?: DeltaStart;
}

/** Everything a handler needs. */
export interface MachineContext {
  readonly config: AgentConfig;
  readonly store: Store;
  readonly boot: Bootloader;
  /** The slot the running system booted from. */
  readonly booted: SlotName;
  /** The bundle of a transaction started in this process (otherwise the source is re-opened). */
  readonly live?: LiveBundle;
  /** How a re-opened URL source is fetched: stall timeout, retries, the device token. */
  readonly download: DownloadSettings;
  /** Aborted when the agent must stop (SIGTERM): the machine stops before the next handler. */
  readonly signal?: AbortSignal;
  /** Runs the configured reboot command. */
  reboot(): Promise<void>;
  /** Progress of the bundle read, for a progress bar. */
  onProgress?(bytesRead: number, total: number | null): void;
  /** The clock maintenance windows are judged by (tests set it). */
  now?(): Date;
  /** One line for the operator (stderr). */
  log(line: string): void;
}

/** The configuration of slot `name`. */
export function slotConfig(config: AgentConfig, name: SlotName): SlotConfig {
  return config.slots.find((s) => s.name === name)!;
}
