/**
 * The download settings of a device (config `server.stallTimeoutSeconds`, `server.downloadRetries`,
 * and its server connection for the token), and the retry budget of one transaction. Every
 * retry is a history event of the transaction, so the budget is counted across agent restarts
 * and reboots too, and a technician sees in `ota-agent history` how the link behaved.
 */
import { formatError } from '../../shared/cli.js';
import type { Store } from '../store/store.js';
import { authFor, type ServerConnection } from '../client/connection.js';
import { SERVER_DEFAULTS } from '../config/fields.js';
import type { AgentConfig, SlotName } from '../config/types.js';
import type { HttpDownload } from '../infra/bundle-source.js';
import type { RetryBudget, RetryEvent } from './http-source.js';

/** How this device fetches bundles over HTTP. */
export interface DownloadSettings {
  /** No byte for this long is a network error. */
  readonly stallMs: number;
  /** Retries one transaction's download may use. */
  readonly retries: number;
  /** A technician install gives up after this long without a byte. */
  readonly installGiveUpMs: number;
  /** The server connection: its token goes to its own origin only. */
  readonly server?: ServerConnection;
}

/** The settings from the config and the server connection. */
export function downloadSettings(config: AgentConfig, server?: ServerConnection): DownloadSettings {
  const s = config.server ?? SERVER_DEFAULTS;
  return { stallMs: s.stallTimeoutSeconds * 1000, retries: s.downloadRetries, installGiveUpMs: s.installGiveUpSeconds * 1000, ...(server ? { server } : {}) };
}

/** Retries already used by transaction `txId` (its recorded retry events). */
export function retriesUsed(store: Store, txId: string): number {
  return store.events({ transactionId: txId }).filter((e) => e.type === 'error' && typeof e.details?.retry === 'number').length;
}

/**
 * The retry budget of one transaction's download, and the hook that logs each retry and, once
 * the transaction exists, records it in its history. An install opens its source before the
 * transaction is persisted; `attach` hands later retries to the transaction.
 */
export class DownloadRetries {
  readonly budget: RetryBudget;
  private txId: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly slot: SlotName,
    private readonly log: (line: string) => void,
    limit: number,
    txId?: string,
  ) {
    this.txId = txId;
    this.budget = { used: txId ? retriesUsed(store, txId) : 0, limit };
  }

  /** From now on, retries are recorded in transaction `txId`'s history. */
  attach(txId: string): void {
    this.txId = txId;
  }

  /** The retry hook of the HTTP source. */
  readonly onRetry = (e: RetryEvent): void => {
    const wait = (e.delayMs / 1000).toFixed(1);
    this.log(`download interrupted at byte ${e.offset}: ${formatError(e.error)}; retry ${e.retry} of ${this.budget.limit} in ${wait} s`);
    const txId = this.txId;
    if (!txId) return;
    this.store.write(`transaction ${txId}: download retry ${e.retry}`, (w) =>
      w.event({
        transactionId: txId,
        type: 'error',
        fromState: 'downloading',
        slot: this.slot,
        details: { error: formatError(e.error), retry: e.retry, attempt: e.attempt, delayMs: e.delayMs, offset: e.offset },
      }),
    );
  };

  /** The options of an HTTP download of `url` with these retries. */
  http(settings: DownloadSettings, url: string, announced: { sha256?: string | null; size?: number | null }, signal?: AbortSignal, giveUpMs?: number): HttpDownload {
    return {
      ...(giveUpMs !== undefined ? { giveUpMs } : {}),
      stallMs: settings.stallMs,
      budget: this.budget,
      onRetry: this.onRetry,
      headers: authFor(settings.server, url),
      ...(announced.sha256 ? { sha256: announced.sha256 } : {}),
      ...(announced.size != null ? { size: announced.size } : {}),
      ...(signal ? { signal } : {}),
    };
  }
}
