/** The agent's configuration as the rest of the agent sees it: validated, defaulted, frozen. */

/** The two slot names GRUB's selection script knows. */
export type SlotName = 'A' | 'B';

/** The slot names in their fixed order. */
export const SLOT_NAMES: readonly SlotName[] = ['A', 'B'];

/** The slot that is not `s`. */
export function otherSlot(s: SlotName): SlotName {
  return s === 'A' ? 'B' : 'A';
}

/** One root slot: a raw device or file, or a directory (a mounted file system). */
export interface SlotConfig {
  readonly name: SlotName;
  readonly kind: 'raw' | 'fs';
  /** Device or file (raw), directory (fs). */
  readonly path: string;
  /** Command run before the slot is used (e.g. mount it at `path`). */
  readonly mount?: readonly string[];
  /** Command run after the slot was used (e.g. unmount it). */
  readonly unmount?: readonly string[];
}

/** A health check: a unit that must be active. */
export interface SystemdCheck {
  readonly name: string;
  readonly systemd: string;
  /** Restarts tried before the unit counts as failed. */
  readonly restarts: number;
  /** Seconds to wait after a restart before looking again. */
  readonly settleSeconds: number;
}

/** A health check: a URL that must answer with a status. */
export interface HttpCheck {
  readonly name: string;
  readonly http: string;
  readonly status: number;
  /** Seconds one request may take. */
  readonly timeoutSeconds: number;
}

/** A health check: a command that must exit 0 in time. */
export interface CommandCheck {
  readonly name: string;
  readonly command: readonly string[];
  readonly timeoutSeconds: number;
}

/** Any health check. */
export type HealthCheckConfig = SystemdCheck | HttpCheck | CommandCheck;

/**
 * The update server, for the daemon's check-in loop. Each of url, token and serverKey, when
 * set, wins over what `ota-agent enroll` stored in `<dataDir>/server.json`.
 */
export interface ServerConfig {
  readonly url?: string;
  readonly token?: string;
  /** The server's public key file (answers are signed with it). */
  readonly serverKey?: string;
  /** The longest time between two check-ins; the server may ask for shorter. */
  readonly pollIntervalSeconds: number;
  /** A download with no byte for this long counts as a network error (and is retried). */
  readonly stallTimeoutSeconds: number;
  /** Network retries one transaction's download may use before it fails. */
  readonly downloadRetries: number;
  /** Each wait between check-ins is the interval times a random factor in [1 - j, 1 + j]. */
  readonly pollJitter: number;
  /** A technician's `ota-agent install URL` gives up after this long without a byte (the daemon never does). */
  readonly installGiveUpSeconds: number;
}

/**
 * The busy gate: a command asked before the agent arms the new slot and before it reboots.
 * Exit 0: free, go on; exit 75 (EX_TEMPFAIL): busy, do not reboot now; anything else (or no
 * answer within timeoutSeconds) counts as busy too, and is logged. The agent waits at most
 * maxWaitSeconds from the first "busy" of a transaction, then goes on.
 */
export interface BusyGateConfig {
  readonly command: readonly string[];
  readonly timeoutSeconds: number;
  readonly maxWaitSeconds: number;
  /** How often the agent asks again while busy. */
  readonly recheckSeconds: number;
}

/** External programs the agent runs; paths are configurable for test rigs and odd images. */
export interface ToolsConfig {
  readonly systemctl: string;
  readonly grubEditenv: string;
  /** libubootenv's tools, the only programs that touch the U-Boot env (bootloader "uboot"). */
  readonly fwPrintenv: string;
  readonly fwSetenv: string;
}

/** The bootloader backends (DESIGN §11). */
export type BootloaderKind = 'grub' | 'uboot' | 'rpi-tryboot';

/** Which bootloader the device has, and where its state lives. */
export interface BootConfig {
  /** The backend: `grub` (grubenv), `uboot` (redundant U-Boot env), `rpi-tryboot` (autoboot.txt). */
  readonly bootloader: BootloaderKind;
  /** grub: the grubenv file. */
  readonly grubenv: string;
  /** uboot: fw_env.config of the primary env copy (otaab.env). */
  readonly fwEnvConfig: string;
  /** uboot: fw_env.config of the second env copy (otaab.bak). */
  readonly fwEnvConfigBackup: string;
  /** rpi-tryboot: autoboot.txt on the mounted FAT boot partition. */
  readonly autoboot: string;
  /** rpi-tryboot: slot A's boot partition number. */
  readonly partitionA: number;
  /** rpi-tryboot: slot B's boot partition number. */
  readonly partitionB: number;
  /** rpi-tryboot: the firmware's device-tree node with `tryboot` and `partition`. */
  readonly deviceTree: string;
  /** rpi-tryboot: the reboot that boots the [tryboot] partition once. */
  readonly trybootCommand: readonly string[];
}

/** The whole agent configuration. */
export interface AgentConfig {
  /** The file it was read from. */
  readonly source: string;
  /** `attributes`: what the device reports of itself at check-in (hardware, site, ...). */
  /** `product`: the product the device runs, sent at enrollment (its releases are that product's). */
  /** `factoryVersion`: the version the factory wrote into both slots (reported until a release commits). */
  readonly device: { readonly id: string; readonly compatible: string; readonly product?: string; readonly factoryVersion?: string; readonly attributes: Readonly<Record<string, string>> };
  readonly slots: readonly SlotConfig[];
  readonly boot: BootConfig;
  readonly cmdlinePath: string;
  readonly rebootCommand: readonly string[];
  readonly rebootTimeoutSeconds: number;
  readonly trustedKeys: readonly string[];
  readonly dataDir: string;
  readonly healthChecks: readonly HealthCheckConfig[];
  readonly healthDeadlineSeconds: number;
  readonly maxTransitions: number;
  /** Slot bytes written between two fsyncs that make a download's progress durable. */
  readonly checkpointBytes: number;
  readonly tools: ToolsConfig;
  readonly server?: ServerConfig;
  readonly busyGate?: BusyGateConfig;
  /** node-exporter textfile the daemon rewrites after every check (a `.prom` path), if any. */
  readonly metricsTextfile?: string;
  /** Delta installs of indexed images into raw slots (docs/DELTA.md). */
  readonly delta: DeltaConfig;
}

/** The `delta` section. */
export interface DeltaConfig {
  /** Build the new slot from the running one where chunks match (else always download whole). */
  readonly enabled: boolean;
  /** The most range requests for one image's missing chunks. */
  readonly maxRequests: number;
  /** Missing chunks at most this many bundle bytes apart share one request. */
  readonly mergeGapBytes: number;
}
