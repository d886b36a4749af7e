/**
 * What a device accepts, as pure functions of the verified manifest and what the device knows
 * (DESIGN §4): built for this device, newer than anything committed (unless a technician
 * explicitly allows a downgrade), payloads that fit the slot kind and size. All of it is
 * decided before any slot is touched.
 */
import { OtaError } from '../../shared/errors.js';
import type { Manifest } from '../../shared/manifest.js';
import { compareVersions } from '../../shared/version.js';

/** What the device knows when it judges a bundle. */
export interface DeviceFacts {
  readonly compatible: string;
  readonly highestCommitted: string | null;
  readonly allowDowngrade: boolean;
  readonly slotKind: 'raw' | 'fs';
  /** Bytes the target slot holds, when known. */
  readonly slotCapacity?: number;
}

/** Throws the first reason the device must refuse `manifest`. */
export function checkBundlePolicy(m: Manifest, d: DeviceFacts): void {
  if (!m.compatible.includes(d.compatible)) {
    throw new OtaError('INCOMPATIBLE_DEVICE', `bundle ${m.product} ${m.version} is built for ${m.compatible.join(', ')}, not for this device (${d.compatible})`);
  }
  if (d.highestCommitted !== null && !d.allowDowngrade && compareVersions(m.version, d.highestCommitted) <= 0) {
    throw new OtaError('VERSION_NOT_NEWER', `bundle version ${m.version} is not greater than ${d.highestCommitted}, the highest committed on this device; use --allow-downgrade to install it anyway`);
  }
  checkPayloadsFit(m, d);
}

function checkPayloadsFit(m: Manifest, d: DeviceFacts): void {
  const types = m.modules.map((x) => x.type);
  if (d.slotKind === 'raw') {
    if (types.length !== 1 || types[0] !== 'image') {
      throw new OtaError('PAYLOAD_SLOT_MISMATCH', `bundle ${m.version} holds ${types.join(', ')}; a raw slot takes exactly one image`);
    }
    const image = m.modules[0]!;
    const bytes = image.compression === 'gzip' ? (image.unpackedSize ?? 0) : image.size;
    if (d.slotCapacity !== undefined && bytes > d.slotCapacity) {
      throw new OtaError('SLOT_TOO_SMALL', `image "${image.name}" is ${bytes} bytes; the slot holds ${d.slotCapacity}`);
    }
    return;
  }
  if (types.includes('image')) throw new OtaError('PAYLOAD_SLOT_MISMATCH', `bundle ${m.version} holds an image; an fs slot takes an archive and/or modules`);
  const archives = types.filter((t) => t === 'archive').length;
  if (archives > 1 || (archives === 1 && types[0] !== 'archive')) {
    throw new OtaError('PAYLOAD_SLOT_MISMATCH', `bundle ${m.version}: an archive must be the first payload, and the only archive`);
  }
}
