/**
 * The server conversation of a running agent. One check is: send the outbox; check in with a
 * fresh nonce and verify the answer; then resume the transaction in flight if there is one,
 * else carry out the directive up to the reboot. The daemon repeats checks every poll interval
 * (with jitter) until it is stopped or a reboot was asked for; `ota-agent check` does one.
 *
 * The outbox goes first so the server decides on what the device has done (a failure report
 * still on its way would let the server offer the failed release again).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { formatError } from '../../shared/cli.js';
import { isOtaError, type OtaError } from '../../shared/errors.js';
import type { Keyring } from '../../shared/signing.js';
import { machineFor, type Device } from '../actions/device.js';
import { downloadSettings } from '../download/settings.js';
import type { RunResult } from '../machine/runner.js';
import type { Transaction } from '../store/types.js';
import { act, type Action } from './act.js';
import type { ApiTarget } from './api.js';
import { checkIn, checkinState, type CheckinResult } from './checkin.js';
import { serverKeyring, type CompleteConnection } from './connection.js';
import { HoldError } from '../machine/gates.js';
import { AGENT_VERSION } from '../infra/version.js';
import { saveWindows } from '../infra/windows-file.js';
import { exportTextfile } from '../metrics/export.js';
import { pollDelayMs } from './poll.js';
import { ReportSender, type FlushResult } from './reports.js';

/** How often the outbox is sent while a transaction runs (progress reports). */
const BACKGROUND_FLUSH_MS = 5000;

/** What one check did. */
export interface CheckReport {
  /** The server's URL. */
  readonly server: string;
  /** The outbox flush before the check-in. */
  readonly reports: FlushResult;
  /** The check-in, when the server answered (verified or refused). */
  readonly checkin?: CheckinResult;
  /** Why there was no answer (unreachable, 5xx, refused token). */
  readonly error?: OtaError;
  /** The transaction that was in flight. */
  readonly inFlight?: Transaction;
  /** Where resuming it stopped (daemon only). */
  readonly resumed?: RunResult;
  /** What was done about the directive (when no transaction was in flight). */
  readonly action?: Action;
}

/** How the session behaves. */
export interface SessionOptions {
  readonly log: (line: string) => void;
  /** SIGTERM: ends the wait, the download and the machine (between states). */
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number | null) => void;
  /**
   * Resume a transaction this session started when a transient failure stopped it (the
   * daemon). A transaction another process runs (a technician's install, `ota-agent check`) is
   * never resumed here: two processes must not write one slot; a process that died leaves it
   * to the daemon's next start.
   */
  readonly resumeInFlight: boolean;
  /** Transactions held at start-up (UPDATE_HELD) that this session goes on with. */
  readonly held?: readonly string[];
  /**
   * Log a failed or refused check-in (the daemon). `ota-agent check` prints the outcome itself
   * as its one closing line, so it turns this off and the error is not printed twice.
   */
  readonly logCheckinErrors?: boolean;
}

/** The version the device reports: the highest it committed, or before any the factory's (`device.factoryVersion`). */
export function reportedVersion(dev: Device): string | null {
  return dev.store.highestCommitted() ?? dev.config.device.factoryVersion ?? null;
}

/**
 * What the device reports of itself at check-in: the config's `device.attributes` (hardware,
 * site, ...), the agent's version and what each slot holds.
 */
export function deviceAttributes(dev: Device): Record<string, string> {
  const out: Record<string, string> = { ...dev.config.device.attributes, agentVersion: AGENT_VERSION };
  // A slot the agent never installed holds what the factory wrote there.
  const factory = dev.config.device.factoryVersion;
  for (const s of Object.values(dev.store.slots())) if (s.version !== null || (factory !== undefined && s.status === 'unknown')) out[`slot.${s.name}`] = s.version ?? factory!;
  return out;
}

/** The transaction run a check ended with, if any. */
export function runOf(r: CheckReport): RunResult | undefined {
  return r.resumed ?? (r.action && 'run' in r.action ? r.action.run : undefined);
}

/** One device's conversation with its server. */
export class ServerSession {
  private readonly sender: ReportSender;
  private readonly target: ApiTarget;
  private readonly timeoutMs: number;
  private readonly refusedReleases = new Set<string>();
  /** Transactions this session started and may resume. */
  private readonly own = new Set<string>();
  /** Transactions of other processes already logged as such. */
  private readonly foreign = new Set<string>();
  /** Own transactions waiting at a gate: run again from their state, not resumed (no transition counted). */
  private readonly held = new Set<string>();
  /** When the gate that held a transaction wants to be asked again. */
  private holdRetryMs: number | undefined;
  private keyring: Keyring | undefined;

  constructor(
    private readonly dev: Device,
    private readonly conn: CompleteConnection,
    private readonly opts: SessionOptions,
  ) {
    this.target = { url: conn.url, token: conn.token };
    // A server that says nothing for as long as a stalled download is as good as unreachable.
    this.timeoutMs = downloadSettings(dev.config).stallMs;
    for (const id of opts.held ?? []) {
      this.held.add(id);
      this.own.add(id);
    }
    this.sender = new ReportSender(this.target, { store: dev.store, device: dev.config.device.id, slot: dev.booted, timeoutMs: this.timeoutMs, log: opts.log });
  }

  /** Sends the outbox now. */
  flush(): Promise<FlushResult> {
    return this.sender.flush();
  }

  private async withBackgroundFlush<T>(fn: () => Promise<T>): Promise<T> {
    const timer = setInterval(() => void this.sender.flush(), BACKGROUND_FLUSH_MS);
    try {
      return await fn();
    } finally {
      clearInterval(timer);
    }
  }

  /** Runs `fn`; a transient failure is logged (the transaction resumes at the next check), being stopped is thrown. */
  private async tolerant<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.withBackgroundFlush(fn);
    } catch (err) {
      if (isOtaError(err, 'AGENT_STOPPED') || !isOtaError(err) || err.kind !== 'transient') throw err;
      const tx = this.dev.store.current();
      if (err instanceof HoldError && tx) {
        this.held.add(tx.id);
        this.own.add(tx.id);
        this.holdRetryMs = err.retryAfterMs;
        return undefined;
      }
      this.opts.log(`${what}: ${formatError(err)}; trying again at the next check-in`);
      return undefined;
    }
  }

  private checkIn(keyring: Keyring): Promise<CheckinResult> {
    const dev = this.dev;
    const state = { ...checkinState({ slot: dev.booted, version: reportedVersion(dev), ...(dev.store.current() ? { transaction: dev.store.current()! } : {}) }), attributes: deviceAttributes(dev) };
    return checkIn(this.target, dev.config.device.id, keyring, state, { timeoutMs: this.timeoutMs, ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
  }

  /** One check: flush, check in, then resume or act; then the metrics textfile, if configured. */
  async check(): Promise<CheckReport> {
    const at = new Date();
    const r = await this.checkOnce();
    await exportTextfile(this.dev, { at, ok: r.checkin?.ok === true }, this.opts.log);
    return r;
  }

  private async checkOnce(): Promise<CheckReport> {
    const { dev, opts } = this;
    const reports = await this.sender.flush();
    let checkin: CheckinResult | undefined;
    let error = reports.error;
    if (!error) {
      // A key that cannot be read is the device's own misconfiguration: that ends the agent.
      this.keyring ??= await serverKeyring(this.conn.serverKey);
      try {
        checkin = await this.checkIn(this.keyring);
      } catch (err) {
        // Refused tokens and requests are reported and tried again at the next interval: the
        // server side may be fixed without touching the device.
        if (!isOtaError(err) || err.code === 'AGENT_STOPPED') throw err;
        error = err;
      }
    }
    const logErrors = opts.logCheckinErrors !== false;
    if (error && logErrors) opts.log(`server ${this.conn.url}: ${formatError(error)}`);
    if (checkin?.ok) {
      // The windows travel in the signed answer; kept on disk so a restart holds to them too.
      if (await saveWindows(dev.config.dataDir, checkin.answer.windows ?? [])) {
        opts.log(`server: maintenance windows ${checkin.answer.windows?.length ? JSON.stringify(checkin.answer.windows) : 'none (any time)'}`);
      }
    }
    if (checkin && !checkin.ok) {
      const refused = checkin.refused;
      dev.store.write('check-in answer refused', (w) =>
        w.event({ type: 'server', slot: dev.booted, reason: `answer-refused:${refused.code}`, details: { error: formatError(refused), server: this.conn.url } }),
      );
      if (logErrors) opts.log(`server ${this.conn.url}: check-in answer refused: ${formatError(refused)}; carrying on without it`);
    }
    const base = { server: this.conn.url, reports, ...(checkin ? { checkin } : {}), ...(error ? { error } : {}) };
    const directive = checkin?.ok ? checkin.answer.directive : undefined;
    const tx = dev.store.current();
    if (tx) {
      if (directive && directive.type !== 'none') opts.log(`server: ${directive.type} directive ignored: transaction ${tx.id} (${tx.kind} ${tx.version}) is in flight`);
      if (!opts.resumeInFlight || !this.own.has(tx.id)) {
        if (opts.resumeInFlight && !this.foreign.has(tx.id)) {
          this.foreign.add(tx.id);
          opts.log(`transaction ${tx.id} (${tx.kind} ${tx.version}) is run by another process; left to it`);
        }
        return { ...base, inFlight: tx };
      }
      const machine = machineFor(dev, { log: opts.log, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
      let resumed;
      if (this.held.has(tx.id)) {
        // Held at a gate before any side effect of its state: run that state again.
        this.held.delete(tx.id);
        resumed = await this.tolerant(`transaction ${tx.id}`, () => machine.run(tx));
      } else {
        opts.log(`resuming transaction ${tx.id} (${tx.kind} ${tx.version}) in state ${tx.state}`);
        resumed = await this.tolerant(`transaction ${tx.id}`, () => machine.resume(tx));
      }
      return { ...base, inFlight: tx, ...(resumed ? { resumed } : {}) };
    }
    if (!directive) return base;
    const action = await this.tolerant(`directive ${directive.type}`, () =>
      act(dev, directive, {
        log: opts.log,
        refusedReleases: this.refusedReleases,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      }),
    );
    // A transient failure left the transaction it started in flight: resumed at the next check.
    const left = dev.store.current();
    if (!action && left) this.own.add(left.id);
    return { ...base, ...(action ? { action } : {}) };
  }

  /**
   * Checks at once, then every poll interval, until stopped (returns undefined) or a
   * transaction asked for a reboot (returns its run; the caller waits for the reboot).
   */
  async loop(): Promise<RunResult | undefined> {
    const { opts } = this;
    for (;;) {
      if (opts.signal?.aborted) return undefined;
      const r = await this.check();
      const run = runOf(r);
      // Reports of what just happened go out now, not one interval later.
      if (run) await this.sender.flush();
      if (run?.status === 'awaiting-reboot') return run;
      const answer = r.checkin?.ok ? r.checkin.answer : undefined;
      let delay = pollDelayMs(this.conn.pollIntervalSeconds, answer?.pollInterval, Math.random, this.dev.config.server?.pollJitter);
      // A gate that wants to be asked sooner than the next check-in is asked then.
      if (this.holdRetryMs !== undefined) delay = Math.max(1000, Math.min(delay, this.holdRetryMs));
      this.holdRetryMs = undefined;
      try {
        await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
      } catch {
        return undefined;
      }
    }
  }
}
