/**
 * Sends the outbox to the server, oldest report first, and marks each one sent (a durable
 * write of its own) once the server acknowledged it. When the server cannot be reached the
 * rest waits for the next flush: nothing is lost, and a report sent twice (acknowledged, but
 * the agent died before marking it) is recognised by its id and stored once by the server.
 */
import { formatError } from '../../shared/cli.js';
import { OtaError } from '../../shared/errors.js';
import type { Store } from '../store/store.js';
import type { SlotName } from '../config/types.js';
import { postJson, type ApiTarget } from './api.js';

/** What one flush did. */
export interface FlushResult {
  readonly sent: number;
  /** Reports the server refused as invalid (4xx): recorded in the history and not sent again. */
  readonly dropped: number;
  /** Reports still waiting. */
  readonly pending: number;
  /** Why the flush stopped early (unreachable, 5xx, refused token). */
  readonly error?: OtaError;
}

/** Who is sending. */
export interface SenderOptions {
  readonly store: Store;
  readonly device: string;
  readonly slot: SlotName;
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
}

/** Flushes one device's outbox; concurrent calls share the flush in progress. */
export class ReportSender {
  private running: Promise<FlushResult> | undefined;

  constructor(
    private readonly target: ApiTarget,
    private readonly opts: SenderOptions,
  ) {}

  /** Sends every pending report it can; never throws. */
  flush(): Promise<FlushResult> {
    this.running ??= this.send().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async send(): Promise<FlushResult> {
    const { store, device } = this.opts;
    let sent = 0;
    let dropped = 0;
    let error: OtaError | undefined;
    const path = `/v1/devices/${encodeURIComponent(device)}/reports`;
    outer: for (;;) {
      const batch = store.pendingReports(50);
      if (batch.length === 0) break;
      let progressed = false;
      for (const entry of batch) {
        const bodyId = typeof entry.body.id === 'string' ? entry.body.id : undefined;
        try {
          await postJson(this.target, path, entry.body, { timeoutMs: this.opts.timeoutMs });
          if (store.markReportSent(entry.id, bodyId)) sent++;
          progressed = true;
        } catch (err) {
          const e = err instanceof OtaError ? err : new OtaError('SERVER_BAD_ANSWER', `report ${entry.id}: ${formatError(err)}`, { cause: err });
          if (e.code !== 'SERVER_REFUSED') {
            error = e;
            break outer;
          }
          // The server will never take this one (it fails its schema): keep the queue moving,
          // and keep the report and the reason in the history instead.
          store.write(`report ${entry.id} refused by the server`, (w) => {
            w.event({ transactionId: entry.transactionId, type: 'server', slot: this.opts.slot, reason: 'report-refused', details: { error: formatError(e), report: entry.body } });
          });
          store.markReportSent(entry.id);
          this.opts.log(`report ${entry.id} refused by the server and dropped: ${formatError(e)}`);
          dropped++;
          progressed = true;
        }
      }
      // A batch that moved nothing (every row changed under us) would spin: try again later.
      if (!progressed) break;
    }
    const pending = store.pendingReports(1000).length;
    return { sent, dropped, pending, ...(error ? { error } : {}) };
  }
}
