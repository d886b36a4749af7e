/**
 * The check-in path, kept lean for thousands of devices: one write transaction records the
 * device's state and attributes, takes a waiting rollback request and asks the rollouts which
 * release (if any) the device may be offered now (joining it to a running rollout it is in the
 * target of); the pure policies decide; the answer, with the maintenance windows of the
 * device's groups, is signed by the signer service.
 *
 * Durability: a check-in that delivers a rollback request commits with synchronous=FULL like
 * every other write, because a delivery lost in a power cut would deliver the rollback twice.
 * Every other check-in only records what the device says of itself (last seen, slot, version,
 * state), which its next check-in says again; it commits with synchronous=NORMAL, so it waits
 * for no fsync of its own. In WAL mode that loses at most the last such commits in a power cut
 * and never corrupts: the WAL is a sequence, and the next FULL commit (a report, a delivery,
 * an enrollment) makes everything before it durable too. Measured: this lifts check-ins from
 * about 590/s to about 1,700/s on the 2-core benchmark machine (docs/PERFORMANCE.md).
 */
import type Database from 'better-sqlite3';
import { OtaError } from '../shared/errors.js';
import type { CheckinAnswer, CheckinRequest, Directive, SignedEnvelope } from '../shared/protocol.js';
import { isVersion } from '../shared/version.js';
import type { MaintenanceWindow } from '../shared/windows.js';
import type { ServerConfig } from './config.js';
import type { DeviceRouting } from './db/devices.js';
import type { Store } from './db/store.js';
import { decide } from './policy/directive.js';
import type { AnswerSigner } from './signer.js';

/** What the check-in transaction decided. */
interface Step {
  directive: Directive;
  windows: MaintenanceWindow[];
}

/** Answers check-ins. */
export class CheckinService {
  private readonly step: (device: string, c: CheckinRequest, now: Date, base: string, waiting: string | null) => Step;
  private readonly relaxed: Database.Statement;
  private readonly strict: Database.Statement;
  /** PostgreSQL: the database is shared with other instances. */
  private readonly shared: boolean;

  /**
   * `counted` hears each answer's directive type (the metrics); `evaluationFailed` a rollout
   * evaluation after a check-in that failed (the check-in stands; a later one evaluates again).
   */
  constructor(
    private readonly store: Store,
    private readonly signer: AnswerSigner,
    private readonly config: ServerConfig,
    private readonly counted: (directive: Directive['type']) => void = () => {},
    private readonly evaluationFailed: (cause: unknown) => void = () => {},
  ) {
    this.relaxed = store.db.prepare('PRAGMA synchronous = NORMAL');
    this.strict = store.db.prepare('PRAGMA synchronous = FULL');
    this.shared = store.engine === 'postgres';
    // On SQLite IMMEDIATE: take the write lock up front, so `ota-server token` writing at the
    // same time makes this wait (busy_timeout) instead of failing on a lock upgrade. On
    // PostgreSQL without the cluster-wide lock (Store.checkinTransaction).
    this.step = store.checkinTransaction((device: string, c: CheckinRequest, now: Date, base: string, waiting: string | null): Step => {
      let windowsChanges: number | null | undefined;
      let routing: DeviceRouting | undefined;
      if (this.shared) {
        // One round trip records the check-in and reads the routing, the waiting rollback
        // request (a delivery commits durably) and the windows' change count.
        const r = store.devices.recordCheckin(device, c, now);
        if (r?.pending) {
          waiting = r.pending;
          this.strict.run();
        }
        windowsChanges = r?.windowsChanges;
        routing = r;
        if (!routing) throw new OtaError('DEVICE_NOT_FOUND', `device ${device}: not enrolled`);
      } else {
        routing = store.devices.routing(device);
        if (!routing) throw new OtaError('DEVICE_NOT_FOUND', `device ${device}: not enrolled`);
        store.devices.recordCheckin(device, c, now, routing.attributes);
      }
      const tags = routing.tags ? routing.tags.split('\n') : [];
      const windows = store.windows.forTags(tags, windowsChanges);
      // Who is offered what is the rollouts' decision (server/rollout/policy.ts); a plain
      // channel publish is a one-phase rollout.
      const chosen = store.rollouts.choose(
        {
          id: device,
          product: routing.product,
          channel: routing.channel,
          compatible: routing.compatible,
          tags: new Set(tags),
          attributes: c.attributes ?? (JSON.parse(routing.attributes) as Record<string, string>),
          version: c.version,
        },
        (product, version) => store.releases.offer(product, version).compatible,
        now,
        (version) => store.reports.failed(device, version),
      );
      const offer = chosen ? store.releases.offer(chosen.product, chosen.version) : null;
      const d = decide({
        checkin: c,
        compatible: routing.compatible,
        rollback: waiting === null ? null : store.rollbacks.deliver(waiting, now),
        offer,
        offerFailed: false,
      });
      if (d.type !== 'update' || !offer || !chosen) return { directive: d.type === 'rollback' ? d : { type: 'none' }, windows };
      if (chosen.status === 'waiting') store.rollouts.markOffered(chosen.rollout, device, now);
      return {
        windows,
        directive: {
          type: 'update',
          release: {
            version: offer.version,
            sha256: offer.sha256,
            size: offer.size,
            url: `${base}/v1/bundles/${offer.sha256}`,
            manifest: offer.manifest,
            manifestSignature: offer.manifestSignature,
          },
        },
      };
    });
  }

  /** Records the check-in of `device` and returns its signed answer; `base` is the server URL seen by the device. */
  async answer(device: string, c: CheckinRequest, requestBase: string, now = new Date()): Promise<SignedEnvelope> {
    if (c.version !== null && !isVersion(c.version)) {
      throw new OtaError('REQUEST_INVALID', `body field "version" must be a semantic version or null, not "${c.version}"`);
    }
    if (c.transaction && !isVersion(c.transaction.version)) {
      throw new OtaError('REQUEST_INVALID', `body field "transaction.version" must be a semantic version, not "${c.transaction.version}"`);
    }
    // The waiting rollback request is read once, before the transaction: it chooses the commit
    // mode and is what the transaction delivers. The delivery itself is conditional
    // (`delivered IS NULL`), so when another instance on the same PostgreSQL database delivered
    // it meanwhile this check-in delivers nothing, and a request made meanwhile waits for the
    // next check-in: delivered once, never twice.
    // (On PostgreSQL it is read inside the transaction, with the check-in's first statement.)
    const waiting = this.shared ? null : this.store.rollbacks.waiting(device);
    const relax = waiting === null;
    if (relax) this.relaxed.run();
    let step: Step;
    try {
      step = this.step(device, c, now, this.config.publicUrl ?? requestBase, waiting);
    } finally {
      if (relax) this.strict.run();
    }
    // Rollouts it found soaking are evaluated after it, under the write lock.
    // The check-in is stored and its answer does not depend on this: a failure here is logged
    // and the rollout evaluated again by a later check-in (at most once a second), not answered
    // to this device as an error it would retry.
    if (this.store.rollouts.hasDue) {
      try {
        this.store.transaction(() => this.store.rollouts.applyDue(now));
      } catch (cause) {
        this.evaluationFailed(cause);
      }
    }
    this.counted(step.directive.type);
    const answer: CheckinAnswer = {
      device,
      nonce: c.nonce,
      issued: now.toISOString(),
      expires: new Date(now.getTime() + this.config.answerTtl * 1000).toISOString(),
      directive: step.directive,
      pollInterval: this.config.pollInterval,
      // Only to devices in a group with windows: the answers of the others stay as they were.
      ...(step.windows.length > 0 ? { windows: step.windows } : {}),
    };
    return this.signer.sign(answer);
  }
}
