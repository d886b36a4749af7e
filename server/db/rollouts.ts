/**
 * Rollout rows and their per-device membership. Every count is derived from the per-device rows
 * (`rollout_devices`), and every change of a device's status happens in the transaction of the
 * report that causes it, together with the evaluation it triggers: a rollout's counts are exact
 * whatever kills the server, and each device counts once. The decisions themselves are the pure
 * functions of server/rollout/policy.ts.
 */
import { randomInt } from 'node:crypto';
import { OtaError } from '../../shared/errors.js';
import type { Report } from '../../shared/protocol.js';
import { compareVersions, isVersion } from '../../shared/version.js';
import {
  assignPhases,
  evaluate,
  inTarget,
  offered,
  statusFromReport,
  type Evaluation,
  type MemberStatus,
  type Phase,
  type PhaseCounts,
  type RolloutRules,
  type RolloutState,
  type Target,
  type TargetFacts,
} from '../rollout/policy.js';
import { newId } from '../tokens.js';
import type { Db } from './open.js';

/** A rollout to create. */
export interface NewRollout {
  product: string;
  version: string;
  kind: 'staged' | 'publish';
  target: Target;
  phases: readonly Phase[];
  successShare: number;
  soakSeconds: number;
  pauseFailures: number | null;
  pauseFailureShare: number | null;
  createdBy: string;
  /** Fixed for tests; random otherwise. */
  seed?: number;
}

/** A rollout as the API shows it. */
export interface RolloutView {
  id: string;
  product: string;
  version: string;
  kind: 'staged' | 'publish';
  target: Target;
  phases: Phase[];
  successShare: number;
  soakSeconds: number;
  pauseFailures: number | null;
  pauseFailureShare: number | null;
  seed: number;
  state: RolloutState;
  /** Index (0-based) of the last open phase. */
  phase: number;
  phaseOpened: string;
  acknowledgedFailures: number;
  /** Why it paused, was aborted or superseded. */
  reason: string | null;
  createdBy: string;
  created: string;
  updated: string;
  /** Devices per phase and status, from the per-device rows. */
  counts: (PhaseCounts & { waiting: number; offered: number; installing: number })[];
  totals: { members: number; success: number; failure: number; installing: number; offered: number; waiting: number };
}

/** A member of a rollout as `rollouts show` lists it. */
export interface MemberView {
  device: string;
  phase: number;
  position: number;
  status: MemberStatus;
  reason: string | null;
  updated: string;
}

interface RolloutRow {
  id: string;
  product: string;
  version: string;
  kind: 'staged' | 'publish';
  channel: string | null;
  tags: string;
  attributes: string;
  phases: string;
  success_share: number;
  soak_seconds: number;
  pause_failures: number | null;
  pause_failure_share: number | null;
  seed: number;
  state: RolloutState;
  phase: number;
  phase_opened: string;
  acknowledged_failures: number;
  reason: string | null;
  created_by: string;
  created: string;
  updated: string;
}

function rules(r: RolloutRow): RolloutRules {
  return {
    state: r.state,
    phase: r.phase,
    phaseOpened: new Date(r.phase_opened),
    phases: JSON.parse(r.phases) as Phase[],
    successShare: r.success_share,
    soakSeconds: r.soak_seconds,
    pauseFailures: r.pause_failures,
    pauseFailureShare: r.pause_failure_share,
    acknowledgedFailures: r.acknowledged_failures,
  };
}

function target(r: RolloutRow): Target {
  return { channel: r.channel, tags: JSON.parse(r.tags) as string[], attributes: JSON.parse(r.attributes) as Record<string, string> };
}

/** The device facts a check-in brings to the rollouts. */
export interface CheckinFacts extends TargetFacts {
  id: string;
  /** Highest committed version the device reports. */
  version: string | null;
}

/** The rollout a check-in may offer, once chosen. */
export interface Chosen {
  rollout: string;
  product: string;
  version: string;
  status: MemberStatus;
}

/** Prepared statements over rollouts and their members. */
export class RolloutQueries {
  private readonly insertStmt;
  private readonly memberInsert;
  private readonly getStmt;
  private readonly listStmt;
  private readonly activeStmt;
  private readonly memberStmt;
  private readonly statusStmt;
  private readonly offeredStmt;
  private readonly countsStmt;
  private readonly membersStmt;
  private readonly stateStmt;
  private readonly phaseStmt;
  private readonly ackStmt;
  private readonly supersedeStmt;
  private readonly maxPosStmt;
  private readonly byVersionStmt;
  private readonly failuresStmt;
  private readonly soakCheck = new Map<string, number>();
  /** Rollouts a check-in found soaking, to evaluate after its transaction (applyDue). */
  private readonly due = new Set<string>();

  /**
   * PostgreSQL, where check-ins take no cluster-wide lock: devices joining one rollout take its
   * own transaction-scoped lock, one after the other, so each gets its own shuffle position.
   */
  private readonly joinLock;

  constructor(db: Db, shared = false) {
    this.joinLock = shared ? db.prepare('SELECT pg_advisory_xact_lock(hashtext(?))') : null;
    this.insertStmt = db.prepare(
      `INSERT INTO rollouts (id, product, version, kind, channel, tags, attributes, phases, success_share, soak_seconds, pause_failures,
       pause_failure_share, seed, state, phase, phase_opened, created_by, created, updated)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', 0, ?, ?, ?, ?)`,
    );
    this.memberInsert = db.prepare('INSERT INTO rollout_devices (rollout, device, phase, position, status, updated) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING');
    this.getStmt = db.prepare('SELECT * FROM rollouts WHERE id = ?');
    this.listStmt = db.prepare('SELECT * FROM rollouts WHERE (? IS NULL OR product = ?) ORDER BY created DESC, id');
    // Its columns named: a prepared statement on PostgreSQL (pg-sync.ts) for every check-in.
    const columns = `id, product, version, kind, channel, tags, attributes, phases, success_share, soak_seconds, pause_failures,
      pause_failure_share, seed, state, phase, phase_opened, acknowledged_failures, reason, created_by, created, updated`;
    this.activeStmt = db.prepare(`SELECT ${columns} FROM rollouts WHERE state IN ('running', 'completed') AND (? IS NULL OR product = ?)`);
    this.memberStmt = db.prepare('SELECT phase, status FROM rollout_devices WHERE rollout = ? AND device = ?');
    this.statusStmt = db.prepare('UPDATE rollout_devices SET status = ?, reason = ?, updated = ? WHERE rollout = ? AND device = ?');
    this.offeredStmt = db.prepare("UPDATE rollout_devices SET status = 'offered', reason = NULL, updated = ? WHERE rollout = ? AND device = ? AND status = 'waiting'");
    this.countsStmt = db.prepare('SELECT phase, status, count(*) AS n FROM rollout_devices WHERE rollout = ? GROUP BY phase, status');
    this.membersStmt = db.prepare('SELECT device, phase, position, status, reason, updated FROM rollout_devices WHERE rollout = ? ORDER BY position');
    this.stateStmt = db.prepare('UPDATE rollouts SET state = ?, reason = ?, updated = ? WHERE id = ?');
    this.phaseStmt = db.prepare('UPDATE rollouts SET phase = ?, phase_opened = ?, updated = ? WHERE id = ?');
    this.ackStmt = db.prepare('UPDATE rollouts SET acknowledged_failures = ? WHERE id = ?');
    this.supersedeStmt = db.prepare(
      "UPDATE rollouts SET state = 'superseded', reason = ?, updated = ? WHERE kind = 'publish' AND product = ? AND channel = ? AND state IN ('running', 'paused', 'completed')",
    );
    this.maxPosStmt = db.prepare('SELECT coalesce(max(position), -1) FROM rollout_devices WHERE rollout = ?').pluck();
    this.byVersionStmt = db.prepare(
      `SELECT m.rollout, m.status FROM rollout_devices m JOIN rollouts r ON r.id = m.rollout
       WHERE m.device = ? AND r.version = ? AND m.status NOT IN ('success', 'failure')`,
    );
    this.failuresStmt = db.prepare("SELECT reason, count(*) AS n FROM rollout_devices WHERE rollout = ? AND status = 'failure' GROUP BY reason ORDER BY n DESC LIMIT 5");
  }

  private row(id: string): RolloutRow {
    const r = this.getStmt.get(id) as RolloutRow | undefined;
    if (!r) throw new OtaError('ROLLOUT_NOT_FOUND', `rollout ${id}: no such rollout`);
    return r;
  }

  /**
   * Starts a rollout over `devices` (the target's devices now): a seeded shuffle fixes who is
   * in which phase. A publish supersedes the channel's previous publish.
   */
  create(spec: NewRollout, devices: readonly { id: string; version: string | null }[], now = new Date()): RolloutView {
    const id = newId('ro');
    const seed = spec.seed ?? randomInt(0, 2 ** 31);
    const at = now.toISOString();
    if (spec.kind === 'publish' && spec.target.channel !== null) {
      this.supersedeStmt.run(`superseded by ${id} (${spec.product} ${spec.version})`, at, spec.product, spec.target.channel);
    }
    this.insertStmt.run(
      id, spec.product, spec.version, spec.kind, spec.target.channel, JSON.stringify(spec.target.tags), JSON.stringify(spec.target.attributes),
      JSON.stringify(spec.phases), spec.successShare, spec.soakSeconds, spec.pauseFailures, spec.pauseFailureShare, seed, at, spec.createdBy, at, at,
    );
    const versions = new Map(devices.map((d) => [d.id, d.version]));
    for (const m of assignPhases([...versions.keys()], spec.phases, seed)) {
      // A device already at (or past) the release is a success from the start.
      const v = versions.get(m.device) ?? null;
      const done = v !== null && isVersion(v) && compareVersions(v, spec.version) >= 0;
      this.memberInsert.run(id, m.device, m.phase, m.position, done ? 'success' : 'waiting', at);
    }
    this.apply(id, now);
    return this.get(id);
  }

  /** One rollout with its counts. */
  get(id: string): RolloutView {
    const r = this.row(id);
    const phases = JSON.parse(r.phases) as Phase[];
    const counts = phases.map(() => ({ members: 0, success: 0, failure: 0, waiting: 0, offered: 0, installing: 0 }));
    for (const c of this.countsStmt.all(id) as { phase: number; status: MemberStatus; n: number }[]) {
      const p = counts[c.phase];
      if (!p) continue;
      p.members += c.n;
      p[c.status] += c.n;
    }
    const totals = { members: 0, success: 0, failure: 0, installing: 0, offered: 0, waiting: 0 };
    for (const p of counts) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += p[k];
    return {
      id: r.id,
      product: r.product,
      version: r.version,
      kind: r.kind,
      target: target(r),
      phases,
      successShare: r.success_share,
      soakSeconds: r.soak_seconds,
      pauseFailures: r.pause_failures,
      pauseFailureShare: r.pause_failure_share,
      seed: r.seed,
      state: r.state,
      phase: r.phase,
      phaseOpened: r.phase_opened,
      acknowledgedFailures: r.acknowledged_failures,
      reason: r.reason,
      createdBy: r.created_by,
      created: r.created,
      updated: r.updated,
      counts,
      totals,
    };
  }

  /** Every rollout (of one product, or all), newest first. */
  list(product: string | null = null): RolloutView[] {
    return (this.listStmt.all(product, product) as RolloutRow[]).map((r) => this.get(r.id));
  }

  /** A rollout's members, in shuffle order. */
  members(id: string): MemberView[] {
    this.row(id);
    return this.membersStmt.all(id) as MemberView[];
  }

  /** The failures' reasons, most frequent first. */
  failureReasons(id: string): { reason: string; devices: number }[] {
    return (this.failuresStmt.all(id) as { reason: string | null; n: number }[]).map((f) => ({ reason: f.reason ?? 'unspecified', devices: f.n }));
  }

  private counts(id: string, phases: number): PhaseCounts[] {
    const counts = Array.from({ length: phases }, () => ({ members: 0, success: 0, failure: 0 }));
    for (const c of this.countsStmt.all(id) as { phase: number; status: MemberStatus; n: number }[]) {
      const p = counts[c.phase];
      if (!p) continue;
      p.members += c.n;
      if (c.status === 'success') p.success += c.n;
      if (c.status === 'failure') p.failure += c.n;
    }
    return counts;
  }

  /** Evaluates a rollout and applies the decision (caller holds the write transaction). */
  apply(id: string, now: Date): Evaluation {
    const r = this.row(id);
    const rl = rules(r);
    const e = evaluate(rl, this.counts(id, rl.phases.length), now);
    const at = now.toISOString();
    if (e.type === 'advance') this.phaseStmt.run(e.phase, at, at, id);
    else if (e.type === 'complete') this.stateStmt.run('completed', null, at, id);
    else if (e.type === 'pause') {
      const reasons = this.failureReasons(id).map((f) => `${f.reason} x${f.devices}`).join(', ');
      this.stateStmt.run('paused', `paused by itself: ${e.reason}; reasons: ${reasons}`, at, id);
    }
    // An advance may make the next phase's target reachable at once (devices already there).
    if (e.type === 'advance') this.apply(id, now);
    return e;
  }

  /** Pause, resume or abort by hand. */
  control(id: string, action: 'pause' | 'resume' | 'abort', by: string, now = new Date()): RolloutView {
    const r = this.row(id);
    const at = now.toISOString();
    const allowed: Record<typeof action, RolloutState[]> = { pause: ['running', 'completed'], resume: ['paused'], abort: ['running', 'paused', 'completed'] };
    if (!allowed[action].includes(r.state)) {
      throw new OtaError('ROLLOUT_STATE', `rollout ${id}: cannot ${action} a rollout that is ${r.state}`);
    }
    if (action === 'pause') this.stateStmt.run('paused', `paused by ${by}`, at, id);
    else if (action === 'abort') this.stateStmt.run('aborted', `aborted by ${by}`, at, id);
    else {
      // Resuming acknowledges the failures so far: the thresholds count new ones from here.
      const failures = this.counts(id, (JSON.parse(r.phases) as Phase[]).length).reduce((n, p, i) => (i <= r.phase ? n + p.failure : n), 0);
      this.ackStmt.run(failures, id);
      this.stateStmt.run('running', null, at, id);
      this.phaseStmt.run(r.phase, r.phase_opened, at, id);
      this.apply(id, now);
    }
    return this.get(id);
  }

  /**
   * The rollout a checking-in device may be offered: among the active rollouts of its product
   * whose target it is in and whose release is newer than its own, the newest whose open phases
   * include it. A device in the target that is no member yet joins the last open phase.
   */
  choose(d: CheckinFacts, compatible: (product: string, version: string) => ReadonlySet<string>, now: Date, failed: (version: string) => boolean): Chosen | null {
    const active = this.activeStmt.all(d.product, d.product) as RolloutRow[];
    if (active.length === 0) return null;
    const newer = active.filter((r) => d.version === null || !isVersion(d.version) || compareVersions(r.version, d.version) > 0);
    newer.sort((a, b) => compareVersions(b.version, a.version) || (a.created < b.created ? 1 : -1));
    for (const r of newer) {
      if (!inTarget({ product: r.product, compatible: compatible(r.product, r.version), ...target(r) }, d)) continue;
      let m = this.memberStmt.get(r.id, d.id) as { phase: number; status: MemberStatus } | undefined;
      if (!m) {
        m = { phase: r.phase, status: 'waiting' };
        this.joinLock?.run(r.id);
        this.memberInsert.run(r.id, d.id, r.phase, (this.maxPosStmt.get(r.id) as number) + 1, 'waiting', now.toISOString());
      }
      if (r.soak_seconds > 0 && r.state === 'running') this.soak(r.id, now);
      if (offered(r.state, r.phase, m.phase, m.status) && !failed(r.version)) return { rollout: r.id, product: r.product, version: r.version, status: m.status };
      // Not offered this one (a later phase, paused): an older rollout may still be offered.
    }
    return null;
  }

  /**
   * A soak time passes without any report: check-ins look again, at most once a second per
   * rollout. The check-in only notes it; `applyDue` evaluates after the check-in's transaction,
   * in a write transaction of its own (the check-in's own answer does not depend on it: it
   * offers from what it read before).
   */
  private soak(id: string, now: Date): void {
    const last = this.soakCheck.get(id) ?? 0;
    if (now.getTime() - last < 1000) return;
    this.soakCheck.set(id, now.getTime());
    this.due.add(id);
  }

  /** True when a check-in noted rollouts to evaluate (`applyDue`); a getter, so never timed per call. */
  get hasDue(): boolean {
    return this.due.size > 0;
  }

  /** Evaluates the rollouts check-ins found soaking that still run (caller holds the write transaction). */
  applyDue(now: Date): void {
    const ids = [...this.due];
    this.due.clear();
    for (const id of ids) if ((this.getStmt.get(id) as RolloutRow | undefined)?.state === 'running') this.apply(id, now);
  }

  /**
   * Marks a member offered (the check-in's answer carries the release); only a waiting one, so
   * a report that moved it on meanwhile (on another instance) is never undone.
   */
  markOffered(rollout: string, device: string, now: Date): void {
    this.offeredStmt.run(now.toISOString(), rollout, device);
  }

  /**
   * Applies a device report to the rollouts of its version it is a member of, and evaluates
   * them; runs inside the report's transaction. Rollback transactions are not installs.
   */
  onReport(device: string, r: Report, now: Date): void {
    if (r.details && (r.details as { kind?: unknown }).kind === 'rollback') return;
    for (const m of this.byVersionStmt.all(device, r.version) as { rollout: string; status: MemberStatus }[]) {
      const next = statusFromReport(m.status, r);
      if (next === null) continue;
      this.statusStmt.run(next, next === 'failure' ? (r.reason ?? 'unspecified') : null, now.toISOString(), m.rollout, device);
      if (next === 'success' || next === 'failure') this.apply(m.rollout, now);
    }
  }
}
