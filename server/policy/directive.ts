/**
 * What a check-in is told to do, as a pure function of what the server knows, so the whole
 * policy reads in one place and is testable without a database.
 */
import type { CheckinRequest } from '../../shared/protocol.js';
import { compareVersions, isVersion } from '../../shared/version.js';

/** The facts the decision takes. */
export interface DirectiveFacts {
  checkin: CheckinRequest;
  /** The device's compatible type. */
  compatible: string;
  /** A technician rollback request just taken for delivery, if any. */
  rollback: string | null;
  /** The release of the device's channel, if the channel is published. */
  offer: { version: string; compatible: ReadonlySet<string> } | null;
  /** True when a report said `offer` failed on this device before. */
  offerFailed: boolean;
}

/** The decision: no action, roll back, or install `version`. */
export type Decision = { type: 'none' } | { type: 'rollback'; id: string } | { type: 'update'; version: string };

/** Decides a check-in's directive. */
export function decide(f: DirectiveFacts): Decision {
  if (f.rollback !== null) return { type: 'rollback', id: f.rollback };
  const offer = f.offer;
  if (!offer || !offer.compatible.has(f.compatible) || f.offerFailed) return { type: 'none' };
  const current = f.checkin.version;
  // A device only moves forward (DESIGN §4): never offer what is not newer than its committed release.
  if (current !== null && (!isVersion(current) || compareVersions(offer.version, current) <= 0)) return { type: 'none' };
  // A transaction for this release means the device is installing it, has it, or just saw it
  // fail with the report still on its way: in no case is offering it again useful.
  if (f.checkin.transaction?.version === offer.version) return { type: 'none' };
  return { type: 'update', version: offer.version };
}
