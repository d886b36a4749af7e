/** What the slot backends share: the digest a slot must read back as, and the writer surface. */
import type { PayloadEntry } from '../../../shared/bundle-reader.js';
import type { ModuleSpec } from '../../../shared/manifest.js';
import type { SlotConfig } from '../../config/types.js';

/** What a written slot must read back as: the raw bytes written, or the tree's digest. */
export type SlotDigest =
  | { readonly kind: 'raw'; readonly length: number; readonly sha256: string }
  | { readonly kind: 'fs'; readonly entries: number; readonly sha256: string };

/** Counters of a tree write, for the history. */
export interface WriteStats {
  /** Bytes written into the slot. */
  bytesWritten: number;
  /** fs slots: files copied from the active slot, and files already equal there. */
  copied?: number;
  unchanged?: number;
  removed?: number;
}

/** A point up to which the slot's data is fsynced. */
export interface DurablePoint {
  /** Bytes written into the slot so far. */
  readonly slotBytes: number;
  /**
   * Where the bundle can be read on from (BundleReader.resume), when the payload allows it:
   * an uncompressed image whose first `offset` bytes are in the slot as they are in the bundle.
   */
  readonly resume?: { readonly index: number; readonly dataOffset: number; readonly offset: number };
}

/** Options of one slot write. */
export interface WriteOptions {
  /** Every payload of the verified manifest (a module install skips copying all their targets). */
  readonly modules: readonly ModuleSpec[];
  /** The active slot (read, never written), for module installs that start from it. */
  readonly active: SlotConfig;
  /** Bytes written between two fsyncs that make progress durable (raw slots). */
  readonly checkpointBytes: number;
  /** Called after each fsync of the data so far. */
  readonly onDurable?: (point: DurablePoint) => void;
}

/** The result of a slot write. */
export interface WriteResult {
  readonly digest: SlotDigest;
  readonly stats: WriteStats;
}

/** A slot backend: writes a verified bundle's payloads into its slot and reads it back. */
export interface SlotBackend {
  readonly config: SlotConfig;
  /** Streams the payloads in and fsyncs; the caller runs it inside `withMounted`. */
  write(payloads: AsyncIterable<PayloadEntry>, opts: WriteOptions): Promise<WriteResult>;
  /** Hashes the slot as it now is, in the shape of `expected`. */
  readBack(expected: SlotDigest): Promise<SlotDigest>;
  /** How many bytes the slot can hold, when that can be known. */
  capacity(): Promise<number | undefined>;
}
