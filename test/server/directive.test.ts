/** The check-in policy as a table: facts in, directive out. */
import { describe, expect, it } from 'vitest';
import type { CheckinRequest } from '../../shared/protocol.js';
import { decide, type DirectiveFacts } from '../../server/policy/directive.js';

const offer = { version: '2.0.0', compatible: new Set(['x86-gw']) };
const idle: CheckinRequest = { nonce: 'n', slot: 'A', version: '1.0.0', state: 'idle' };
const facts = (over: Partial<DirectiveFacts> = {}, checkin: Partial<CheckinRequest> = {}): DirectiveFacts => ({
  checkin: { ...idle, ...checkin },
  compatible: 'x86-gw',
  rollback: null,
  offer,
  offerFailed: false,
  ...over,
});

describe('decide', () => {
  it.each<[string, DirectiveFacts, ReturnType<typeof decide>]>([
    ['newer compatible release', facts(), { type: 'update', version: '2.0.0' }],
    ['device that never committed anything', facts({}, { version: null }), { type: 'update', version: '2.0.0' }],
    ['rollback request first, even with an update waiting', facts({ rollback: 'rb_1' }), { type: 'rollback', id: 'rb_1' }],
    ['channel not published', facts({ offer: null }), { type: 'none' }],
    ['release not made for this device type', facts({ compatible: 'rpi-cm4' }), { type: 'none' }],
    ['same version as committed', facts({}, { version: '2.0.0' }), { type: 'none' }],
    ['older than committed', facts({}, { version: '2.0.1' }), { type: 'none' }],
    ['pre-release of the committed version is older', facts({ offer: { ...offer, version: '2.0.0-rc.1' } }, { version: '2.0.0' }), { type: 'none' }],
    ['already failed on this device', facts({ offerFailed: true }), { type: 'none' }],
    ['transaction in flight for it', facts({}, { transaction: { id: 't', version: '2.0.0', state: 'downloading' } }), { type: 'none' }],
    ['transaction for it just rolled back (report not in yet)', facts({}, { transaction: { id: 't', version: '2.0.0', state: 'rolled-back' } }), { type: 'none' }],
    ['transaction for another version', facts({}, { transaction: { id: 't', version: '1.5.0', state: 'rolled-back' } }), { type: 'update', version: '2.0.0' }],
    ['committed version not semver (never moves it backwards)', facts({}, { version: 'banana' }), { type: 'none' }],
  ])('%s', (_name, f, expected) => {
    expect(decide(f)).toEqual(expected);
  });
});
