/**
 * Release and channel rows, and the per-release data a check-in's update directive needs.
 * A release is identified by (product, version); a channel belongs to a product.
 */
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
  product: string;
  version: string;
  sha256: string;
  size: number;
  compatible: string[];
  signer: string;
  created: string;
  uploaded: string;
  channels: string[];
}

/** A channel of a product and the release it points at. */
export interface ChannelView {
  product: string;
  name: string;
  version: string;
  updated: string;
}

/** What a check-in offers: everything of an update directive except the URL, precomputed. */
export interface Offer {
  product: string;
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

function view(r: ReleaseRow, channels: readonly ChannelView[]): ReleaseView {
  const names = channels.filter((c) => c.product === r.product && c.version === r.version).map((c) => c.name);
  return { ...r, compatible: JSON.parse(r.compatible) as string[], channels: names };
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
      'INSERT INTO releases (product, version, sha256, size, compatible, manifest, signature, signer, created, uploaded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const cols = 'product, version, sha256, size, compatible, signer, created, uploaded';
    this.getStmt = db.prepare(`SELECT ${cols} FROM releases WHERE product = ? AND version = ?`);
    this.listStmt = db.prepare(`SELECT ${cols} FROM releases WHERE ? IS NULL OR product = ? ORDER BY uploaded, product, version`);
    this.bySha = db.prepare('SELECT product, version, size FROM releases WHERE sha256 = ?');
    this.shasStmt = db.prepare('SELECT sha256 FROM releases').pluck();
    this.channelsStmt = db.prepare('SELECT product, name, version, updated FROM channels ORDER BY product, name');
    this.channelStmt = db.prepare('SELECT version FROM channels WHERE product = ? AND name = ?').pluck();
    this.publishStmt = db.prepare(
      'INSERT INTO channels (product, name, version, updated) VALUES (?, ?, ?, ?) ON CONFLICT (product, name) DO UPDATE SET version = excluded.version, updated = excluded.updated',
    );
    this.offerStmt = db.prepare('SELECT product, version, sha256, size, compatible, manifest, signature FROM releases WHERE product = ? AND version = ?');
  }

  /** Records a release; a stored (product, version) is refused with RELEASE_EXISTS. */
  insert(r: NewRelease, now = new Date()): void {
    if (this.exists(r.product, r.version)) throw new OtaError('RELEASE_EXISTS', `release ${r.product} ${r.version}: already stored; versions are immutable`);
    this.insertStmt.run(r.product, r.version, r.sha256, r.size, JSON.stringify(r.compatible), r.manifest, r.signature, r.signer, r.created, now.toISOString());
  }

  /** True when the release is stored. */
  exists(product: string, version: string): boolean {
    return this.getStmt.get(product, version) !== undefined;
  }

  /** One release, or undefined. */
  get(product: string, version: string): ReleaseView | undefined {
    const row = this.getStmt.get(product, version) as ReleaseRow | undefined;
    return row && view(row, this.channels());
  }

  /** Every release (of one product, or all), oldest upload first, with the channels that point at it. */
  list(product: string | null = null): ReleaseView[] {
    const channels = this.channels();
    return (this.listStmt.all(product, product) as ReleaseRow[]).map((r) => view(r, channels));
  }

  /** A stored bundle by sha256, or undefined when no release has it. */
  bundle(sha256: string): { product: string; version: string; size: number } | undefined {
    return this.bySha.get(sha256) as { product: string; version: string; size: number } | undefined;
  }

  /** The sha256 of every recorded bundle (to sweep unrecorded files at start). */
  bundleHashes(): Set<string> {
    return new Set(this.shasStmt.all() as string[]);
  }

  /** Every channel. */
  channels(): ChannelView[] {
    return this.channelsStmt.all() as ChannelView[];
  }

  /** The version a product's channel points at, or null. */
  channel(product: string, name: string): string | null {
    return (this.channelStmt.get(product, name) as string | undefined) ?? null;
  }

  /** Points a product's `channel` at a stored release; returns the version it pointed at before. */
  publish(product: string, channel: string, version: string, now = new Date()): string | null {
    if (!this.exists(product, version)) throw new OtaError('RELEASE_NOT_FOUND', `release ${product} ${version}: not stored; upload it before publishing`);
    const previous = this.channel(product, channel);
    this.publishStmt.run(product, channel, version, now.toISOString());
    return previous;
  }

  /** The offer of a stored release (cached: releases are immutable). */
  offer(product: string, version: string): Offer {
    const key = `${product}\u0000${version}`;
    let offer = this.offers.get(key);
    if (!offer) {
      const r = this.offerStmt.get(product, version) as { product: string; version: string; sha256: string; size: number; compatible: string; manifest: Buffer; signature: Buffer } | undefined;
      if (!r) throw new OtaError('RELEASE_NOT_FOUND', `release ${product} ${version}: not stored`);
      offer = {
        product: r.product,
        version: r.version,
        sha256: r.sha256,
        size: r.size,
        compatible: new Set(JSON.parse(r.compatible) as string[]),
        manifest: r.manifest.toString('base64'),
        manifestSignature: r.signature.toString('base64'),
      };
      this.offers.set(key, offer);
    }
    return offer;
  }
}
