/**
 * A device that speaks the otaab protocol over real HTTP and nothing more: it enrolls, checks in
 * with fresh nonces and verifies every signed answer, reports its slot versions as attributes,
 * downloads the bundles it is offered (every byte, checked against the sha256) and reports a
 * transaction state by state, ending in success or in a health-check failure chosen by the
 * caller; it carries out or refuses technician rollbacks as the agent would. Slots are two
 * strings, not disks: for fleets of dozens in the console's browser test and the demo, where the
 * full device (scripts/fleet/device.ts: GRUB, slots, the real agent) would be too heavy.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { newNonce, verifyAnswer, type CheckinRequest, type DeviceState, type Directive, type Report } from '../../shared/protocol.js';
import { keyringFromArmored, type Keyring } from '../../shared/signing.js';

/** How one protocol device behaves. */
export interface ProtocolDeviceOptions {
  url: string;
  id: string;
  compatible: string;
  product: string;
  channel?: string;
  /** Check-in period, ms (default 1000; ±20 % jitter). */
  intervalMs?: number;
  /** Time between two reports of a transaction, ms (default 300). */
  stepMs?: number;
  /** The health-check failure an installed version meets on this device, or null when it is healthy. */
  fails?: (version: string) => string | null;
  /** Extra attributes it reports (hardware, site). */
  attributes?: Record<string, string>;
  /** The version the factory put on slot A (default 1.0.0). */
  factory?: string;
}

type Slot = 'A' | 'B';

/** One simulated device. */
export class ProtocolDevice {
  private token = '';
  private keyring: Keyring | undefined;
  private slots: Record<Slot, string | null>;
  /** Slots holding a release that passed its health check (a rollback may only go there). */
  private good: Record<Slot, boolean> = { A: true, B: false };
  private booted: Slot = 'A';
  private committed: string | null;
  private state: DeviceState = 'idle';
  private tx: { id: string; version: string; state: DeviceState } | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Check-ins answered so far. */
  checkins = 0;
  /** The last error met (network, refused answer), for diagnostics. */
  lastError: string | null = null;

  constructor(readonly opts: ProtocolDeviceOptions) {
    const factory = opts.factory ?? '1.0.0';
    this.slots = { A: factory, B: null };
    this.committed = factory;
  }

  get id(): string {
    return this.opts.id;
  }

  /** What the device runs now. */
  get runningVersion(): string | null {
    return this.slots[this.booted];
  }

  /** The version a rollback would go back to, or null when the other slot holds no good release. */
  get rollbackVersion(): string | null {
    const other: Slot = this.booted === 'A' ? 'B' : 'A';
    return this.good[other] ? this.slots[other] : null;
  }

  /** Enrolls with an enroll (or ops) token. */
  async enroll(enrollToken: string): Promise<void> {
    const res = await fetch(`${this.opts.url}/v1/devices/enroll`, {
      method: 'POST',
      headers: { authorization: `Bearer ${enrollToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: this.opts.id, compatible: this.opts.compatible, product: this.opts.product, ...(this.opts.channel ? { channel: this.opts.channel } : {}) }),
    });
    const body = (await res.json()) as { token?: string; serverKey?: string; error?: string; message?: string };
    if (res.status !== 201 || !body.token || !body.serverKey) throw new Error(`${this.opts.id}: enrollment failed: HTTP ${res.status} ${body.error ?? ''} ${body.message ?? ''}`);
    this.token = body.token;
    this.keyring = await keyringFromArmored([body.serverKey]);
  }

  /** Starts checking in every interval until stopped. */
  start(): void {
    this.stopped = false;
    this.running ??= this.loop();
  }

  /** Stops after the current step. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    this.running = undefined;
  }

  private async loop(): Promise<void> {
    const base = this.opts.intervalMs ?? 1000;
    while (!this.stopped) {
      try {
        await this.checkIn();
        this.lastError = null;
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
      }
      if (this.stopped) break;
      await sleep(base * (0.8 + Math.random() * 0.4));
    }
  }

  private async post(path: string, body: unknown): Promise<Response> {
    return fetch(`${this.opts.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  /** One check-in, and whatever its directive asks. */
  async checkIn(): Promise<Directive> {
    const request: CheckinRequest = {
      nonce: newNonce(),
      slot: this.booted,
      version: this.committed,
      state: this.state,
      ...(this.tx ? { transaction: this.tx } : {}),
      attributes: { ...(this.opts.attributes ?? {}), ...(this.slots.A ? { 'slot.A': this.slots.A } : {}), ...(this.slots.B ? { 'slot.B': this.slots.B } : {}) },
    };
    const res = await this.post(`/v1/devices/${encodeURIComponent(this.opts.id)}/checkin`, request);
    if (res.status !== 200) throw new Error(`check-in: HTTP ${res.status} ${await res.text()}`);
    const answer = await verifyAnswer(await res.json(), this.keyring!, { device: this.opts.id, nonce: request.nonce });
    this.checkins++;
    const d = answer.directive;
    if (d.type === 'update') await this.install(d.release.version, d.release.url, d.release.sha256);
    else if (d.type === 'rollback') await this.rollback(d.id);
    return d;
  }

  private async report(r: Omit<Report, 'id' | 'at'>): Promise<void> {
    const body: Report = { id: randomUUID(), at: new Date().toISOString(), ...r };
    for (let attempt = 0; ; attempt++) {
      const res = await this.post(`/v1/devices/${encodeURIComponent(this.opts.id)}/reports`, body).catch(() => null);
      if (res?.status === 200) return;
      if (attempt >= 20) throw new Error(`report ${r.state}: HTTP ${res?.status ?? 'network error'}`);
      await sleep(200);
    }
  }

  private async step(txId: string, version: string, state: DeviceState, extra: Partial<Report> = {}): Promise<void> {
    this.state = state;
    this.tx = { id: txId, version, state };
    await this.report({ transaction: txId, version, state, ...extra });
    await sleep(this.opts.stepMs ?? 300);
  }

  private async install(version: string, url: string, sha256: string): Promise<void> {
    const txId = `tx-${randomUUID().slice(0, 8)}`;
    const target: Slot = this.booted === 'A' ? 'B' : 'A';
    await this.step(txId, version, 'downloading', { progress: { bytes: 0, total: 0 } });
    const res = await fetch(url, { headers: { authorization: `Bearer ${this.token}` } });
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (res.status !== 200 || digest !== sha256) {
      await this.finish(txId, version, 'failed', 'failure', `download:${res.status !== 200 ? `HTTP_${res.status}` : 'PAYLOAD_HASH_MISMATCH'}`);
      return;
    }
    this.slots[target] = version;
    this.good[target] = false;
    await this.step(txId, version, 'installed', { progress: { bytes: bytes.length, total: bytes.length } });
    await this.step(txId, version, 'armed');
    await this.step(txId, version, 'rebooting');
    const source = this.booted;
    this.booted = target;
    await this.step(txId, version, 'verifying');
    const failure = this.opts.fails?.(version) ?? null;
    if (failure === null) {
      this.committed = version;
      this.good[target] = true;
      await this.finish(txId, version, 'committed', 'success', undefined, { health: { passed: true, results: [{ name: 'app', passed: true, output: 'app answered 200 in 12 ms' }] } });
      return;
    }
    // The health check failed: back to the slot it came from, as the agent does.
    await this.step(txId, version, 'rolling-back');
    this.booted = source;
    await this.finish(txId, version, 'rolled-back', 'failure', failure, {
      health: { passed: false, results: [{ name: failure.replace(/^health-check:/, ''), passed: false, output: `GET http://127.0.0.1:8080/health: connection refused after 3 tries (${version})` }] },
    });
  }

  private async rollback(directive: string): Promise<void> {
    const other: Slot = this.booted === 'A' ? 'B' : 'A';
    const back = this.good[other] ? this.slots[other] : null;
    const txId = `tx-${randomUUID().slice(0, 8)}`;
    if (back === null) {
      // Nothing to go back to: refused, with the agent's reason.
      await this.report({ transaction: txId, version: this.slots[this.booted] ?? '0.0.0', state: 'failed', outcome: 'failure', reason: 'ROLLBACK_UNAVAILABLE', details: { directive, refused: true } });
      return;
    }
    await this.step(txId, back, 'rolling-back', { details: { directive } });
    this.booted = other;
    await this.finish(txId, back, 'rolled-back', 'success', 'technician', { directive });
  }

  private async finish(txId: string, version: string, state: DeviceState, outcome: 'success' | 'failure', reason?: string, details?: Record<string, unknown>): Promise<void> {
    await this.report({ transaction: txId, version, state, outcome, ...(reason ? { reason } : {}), ...(details ? { details } : {}) });
    this.tx = undefined;
    this.state = 'idle';
  }
}
