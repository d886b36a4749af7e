/** Release and channel rows, and the per-version data a check-in's update directive needs. */
import { OtaError } from '../../shared/errors.js';
import type { Db } from './open.js';

/** A release to record after its bundle was verified and stored. */
export interface NewRelease {
  version: string;
  sha256: string;
  size: number;
  product: string;
  compatible: readonly string[];
  manifest: Buffer;
  signature: Buffer;
  signer: string;
  created: string;
}

/** A release as the API lists it. */
export interface ReleaseView {
  version: string;
  sha256: string;
  size: number;
  product: string;
  compatible: string[];
  signer: string;
  created: string;
  uploaded: string;
  channels: string[];
}

/** A channel and the release it points at. */
export interface ChannelView {
  name: string;
  version: string;
  updated: string;
}

/** What a check-in offers: everything of an update directive except the URL, precomputed. */
export interface Offer {
  version: string;
  sha256: string;
  size: number;
  compatible: ReadonlySet<string>;
  manifest: string;
  manifestSignature: string;
}

interface ReleaseRow extends Omit<ReleaseView, 'compatible' | 'channels'> {
  compatible: string;
}

function view(r: ReleaseRow, channels: string[]): ReleaseView {
  return { ...r, compatible: JSON.parse(r.compatible) as string[], channels };
}

/** Prepared statements over releases and channels. */
export class ReleaseQueries {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly bySha;
  private readonly shasStmt;
  private readonly channelsStmt;
  private readonly channelStmt;
  private readonly publishStmt;
  private readonly offerStmt;
  /** Releases never change once stored, so their offers are built once. */
  private readonly offers = new Map<string, Offer>();

  constructor(db: Db) {
    this.insertStmt = db.prepare(
      'INSERT INTO releases (version, sha256, size, product, compatible, manifest, signature, signer, created, uploaded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const cols = 'version, sha256, size, product, compatible, signer, created, uploaded';
    this.getStmt = db.prepare(`SELECT ${cols} FROM releases WHERE version = ?`);
    this.listStmt = db.prepare(`SELECT ${cols} FROM releases ORDER BY uploaded, version`);
    this.bySha = db.prepare('SELECT version, size FROM releases WHERE sha256 = ?');
    this.shasStmt = db.prepare('SELECT sha256 FROM releases').pluck();
    this.channelsStmt = db.prepare('SELECT name, version, updated FROM channels ORDER BY name');
    this.channelStmt = db.prepare('SELECT version FROM channels WHERE name = ?').pluck();
    this.publishStmt = db.prepare(
      'INSERT INTO channels (name, version, updated) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated = excluded.updated',
    );
    this.offerStmt = db.prepare('SELECT version, sha256, size, compatible, manifest, signature FROM releases WHERE version = ?');
  }

  /** Records a release; a stored version is refused with RELEASE_EXISTS. */
  insert(r: NewRelease, now = new Date()): void {
    if (this.getStmt.get(r.version)) throw new OtaError('RELEASE_EXISTS', `release ${r.version}: already stored; versions are immutable`);
    this.insertStmt.run(r.version, r.sha256, r.size, r.product, JSON.stringify(r.compatible), r.manifest, r.signature, r.signer, r.created, now.toISOString());
  }

  /** True when `version` is stored. */
  exists(version: string): boolean {
    return this.getStmt.get(version) !== undefined;
  }

  /** One release, or undefined. */
  get(version: string): ReleaseView | undefined {
    const row = this.getStmt.get(version) as ReleaseRow | undefined;
    return row && view(row, this.channels().filter((c) => c.version === version).map((c) => c.name));
  }

  /** Every release, oldest upload first, with the channels that point at it. */
  list(): ReleaseView[] {
    const channels = this.channels();
    return (this.listStmt.all() as ReleaseRow[]).map((r) => view(r, channels.filter((c) => c.version === r.version).map((c) => c.name)));
  }

  /** Size of a stored bundle by sha256, or undefined when no release has it. */
  bundle(sha256: string): { version: string; size: number } | undefined {
    return this.bySha.get(sha256) as { version: string; size: number } | undefined;
  }

  /** The sha256 of every recorded bundle (to sweep unrecorded files at start). */
  bundleHashes(): Set<string> {
    return new Set(this.shasStmt.all() as string[]);
  }

  /** Every channel. */
  channels(): ChannelView[] {
    return this.channelsStmt.all() as ChannelView[];
  }

  /** Points `channel` at a stored release; returns the version it pointed at before. */
  publish(channel: string, version: string, now = new Date()): string | null {
    if (!this.exists(version)) throw new OtaError('RELEASE_NOT_FOUND', `release ${version}: not stored; upload it before publishing`);
    const previous = (this.channelStmt.get(channel) as string | undefined) ?? null;
    this.publishStmt.run(channel, version, now.toISOString());
    return previous;
  }

  /** The release a channel offers, or null when the channel is unpublished. */
  offer(channel: string): Offer | null {
    const version = this.channelStmt.get(channel) as string | undefined;
    if (version === undefined) return null;
    let offer = this.offers.get(version);
    if (!offer) {
      const r = this.offerStmt.get(version) as { version: string; sha256: string; size: number; compatible: string; manifest: Buffer; signature: Buffer };
      offer = {
        version: r.version,
        sha256: r.sha256,
        size: r.size,
        compatible: new Set(JSON.parse(r.compatible) as string[]),
        manifest: r.manifest.toString('base64'),
        manifestSignature: r.signature.toString('base64'),
      };
      this.offers.set(version, offer);
    }
    return offer;
  }
}
