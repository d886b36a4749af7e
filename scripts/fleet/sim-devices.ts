/**
 * Many cheap simulated devices for the fleet scenarios: each enrolls through the API, checks in
 * with a fresh nonce and verifies the signed answer exactly as the agent does, and "installs" an
 * offered release by sending the reports a real agent would send (downloading ... committed, or
 * a failure with its reason), through an outbox that resends unacknowledged reports with the
 * same ids (the server counts each once). Maintenance windows from the answer are judged with
 * the device's own (injectable) clock, as the agent does (shared/windows.ts). No slots, no GRUB:
 * the agent's own behaviour is tested elsewhere; these exercise the server's fleet logic at scale.
 */
import { randomUUID } from 'node:crypto';
import { newNonce, verifyAnswer, type CheckinAnswer, type Report } from '../../shared/protocol.js';
import { keyringFromArmored, type Keyring } from '../../shared/signing.js';
import { windowState, type MaintenanceWindow } from '../../shared/windows.js';

/** How a simulated device fares with a release. */
export type Fate = (device: SimDevice, version: string) => { ok: true } | { ok: false; reason: string };

/** One simulated device. */
export class SimDevice {
  version: string | null = null;
  /** Transaction in flight: the release it installs and how far it got. */
  tx: { id: string; version: string; state: Report['state'] } | null = null;
  windows: MaintenanceWindow[] = [];
  /** Reports not yet acknowledged, oldest first. */
  readonly outbox: Report[] = [];
  /** Releases it was offered (each once). */
  readonly offered: string[] = [];
  /** Releases it installed (got to `armed` with), in order. */
  readonly installed: string[] = [];
  /** The release it holds before arming, waiting for a window. */
  held = false;

  constructor(
    readonly id: string,
    readonly token: string,
    readonly attributes: Record<string, string>,
  ) {}
}

/** What a fleet needs of the server. */
export interface SimFleetOptions {
  url: string;
  enrollToken: string;
  count: number;
  prefix: string;
  compatible: string;
  product?: string;
  channel?: string;
  attributes?: (i: number) => Record<string, string>;
  /** The devices' clock (windows are judged by it). */
  now?: () => Date;
}

async function post(url: string, token: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
}

/** Runs `fn` over `items` with at most `lanes` at once. */
export async function inLanes<T>(items: readonly T[], lanes: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** A fleet of simulated devices against one server. */
export class SimFleet {
  readonly devices: SimDevice[] = [];
  private keyring: Keyring | undefined;
  now: () => Date;

  private constructor(private readonly opts: SimFleetOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** Enrolls `count` devices. */
  static async enroll(opts: SimFleetOptions): Promise<SimFleet> {
    const f = new SimFleet(opts);
    let serverKey = '';
    await inLanes(
      Array.from({ length: opts.count }, (_, i) => i),
      8,
      async (i) => {
        const id = `${opts.prefix}-${String(i).padStart(4, '0')}`;
        const r = await post(`${opts.url}/v1/devices/enroll`, opts.enrollToken, {
          id,
          compatible: opts.compatible,
          ...(opts.product ? { product: opts.product } : {}),
          ...(opts.channel ? { channel: opts.channel } : {}),
        });
        if (r.status !== 201) throw new Error(`enroll ${id}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
        const body = r.json as { token: string; serverKey: string };
        serverKey = body.serverKey;
        f.devices[i] = new SimDevice(id, body.token, opts.attributes?.(i) ?? {});
      },
    );
    f.keyring = await keyringFromArmored([serverKey]);
    return f;
  }

  private report(d: SimDevice, state: Report['state'], extra: Partial<Report> = {}): void {
    d.outbox.push({ id: randomUUID(), transaction: d.tx!.id, version: d.tx!.version, state, at: this.now().toISOString(), ...extra });
  }

  /** Sends the outbox; stops at the first failure (the rest stays for the next time). */
  async flush(d: SimDevice): Promise<boolean> {
    while (d.outbox.length > 0) {
      try {
        const r = await post(`${this.opts.url}/v1/devices/${d.id}/reports`, d.token, d.outbox[0]);
        if (r.status !== 200) return false;
      } catch {
        return false;
      }
      d.outbox.shift();
    }
    return true;
  }

  /** One check-in: flush, check in, verify; an update starts a transaction. Returns the verified answer. */
  async checkIn(d: SimDevice): Promise<CheckinAnswer | undefined> {
    if (!(await this.flush(d))) return undefined;
    const nonce = newNonce();
    const body = {
      nonce,
      slot: 'A',
      version: d.version,
      state: d.tx ? d.tx.state : 'idle',
      ...(d.tx ? { transaction: d.tx } : {}),
      attributes: d.attributes,
    };
    let r;
    try {
      r = await post(`${this.opts.url}/v1/devices/${d.id}/checkin`, d.token, body);
    } catch {
      return undefined;
    }
    if (r.status !== 200) return undefined;
    const answer = await verifyAnswer(r.json, this.keyring!, { device: d.id, nonce });
    d.windows = answer.windows ?? [];
    if (answer.directive.type === 'update' && !d.tx) {
      d.offered.push(answer.directive.release.version);
      d.tx = { id: `tx-${randomUUID()}`, version: answer.directive.release.version, state: 'downloading' };
      this.report(d, 'downloading');
      this.report(d, 'installed');
    }
    return answer;
  }

  /**
   * Carries the device's transaction on as far as its windows let it: arm, reboot, verify and
   * commit (or fail with the fate's reason) inside a window; held before arming outside one.
   */
  async proceed(d: SimDevice, fate: Fate): Promise<void> {
    const tx = d.tx;
    if (!tx) return;
    const w = windowState(d.windows, this.now());
    if (!w.open) {
      if (!d.held) this.report(d, 'installed', { reason: 'held:window', details: { hold: 'window', opensInMinutes: w.opensInMinutes } });
      d.held = true;
      await this.flush(d);
      return;
    }
    d.held = false;
    d.installed.push(tx.version);
    for (const s of ['armed', 'rebooting', 'verifying'] as const) this.report(d, s);
    const f = fate(d, tx.version);
    if (f.ok) {
      this.report(d, 'committed', { outcome: 'success' });
      d.version = tx.version;
    } else {
      this.report(d, 'rolled-back', { outcome: 'failure', reason: f.reason });
    }
    d.tx = null;
    await this.flush(d);
  }

  /** Every device checks in once and goes on with what it was offered. */
  async round(fate: Fate, lanes = 16): Promise<void> {
    await inLanes(this.devices, lanes, async (d) => {
      await this.checkIn(d);
      await this.proceed(d, fate);
    });
  }
}
