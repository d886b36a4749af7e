/** Starting a rollout: the target's devices now, then the store fixes their phases. */
import { OtaError } from '../../shared/errors.js';
import type { Store } from '../db/store.js';
import type { NewRollout, RolloutView } from '../db/rollouts.js';
import '../errors.js';
import { inTarget } from './policy.js';

/** Starts a rollout of a stored release (the caller holds the write transaction). */
export function startRollout(store: Store, spec: NewRollout, now = new Date()): RolloutView {
  if (!store.releases.exists(spec.product, spec.version)) {
    throw new OtaError('RELEASE_NOT_FOUND', `release ${spec.product} ${spec.version}: not stored; upload it before rolling it out`);
  }
  const offer = store.releases.offer(spec.product, spec.version);
  const devices = store.devices
    .list()
    .filter((d) => inTarget({ product: spec.product, compatible: offer.compatible, ...spec.target }, { ...d, tags: new Set(d.tags) }))
    .map((d) => ({ id: d.id, version: d.version }));
  return store.rollouts.create(spec, devices, now);
}
