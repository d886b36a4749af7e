// What a device accepts, as pure decisions: compatible, newer, payloads that fit the slot.
import { describe, expect, it } from 'vitest';
import { checkBundlePolicy, type DeviceFacts } from '../../agent/actions/policy.js';
import type { Manifest, ModuleSpec } from '../../shared/manifest.js';

const image: ModuleSpec = { name: 'rootfs', type: 'image', sha256: 'a'.repeat(64), size: 1000, compression: 'none' };
const manifest = (version: string, modules: ModuleSpec[] = [image], compatible = ['gw']): Manifest => ({
  format: 1, product: 'p', version, compatible, created: '2026-01-01T00:00:00Z', modules,
});
const facts = (f: Partial<DeviceFacts> = {}): DeviceFacts => ({ compatible: 'gw', highestCommitted: '2.0.0', allowDowngrade: false, slotKind: 'raw', slotCapacity: 4096, ...f });
const code = (fn: () => void): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe('bundle policy', () => {
  it('accepts a newer, compatible image that fits', () => {
    expect(code(() => checkBundlePolicy(manifest('2.0.1'), facts()))).toBeUndefined();
    expect(code(() => checkBundlePolicy(manifest('1.0.0'), facts({ highestCommitted: null })))).toBeUndefined();
  });

  it('refuses another device, compatibility first', () => {
    expect(code(() => checkBundlePolicy(manifest('1.0.0', [image], ['other']), facts()))).toBe('INCOMPATIBLE_DEVICE');
  });

  it('refuses an older or equal version unless a downgrade is allowed', () => {
    expect(code(() => checkBundlePolicy(manifest('2.0.0'), facts()))).toBe('VERSION_NOT_NEWER');
    expect(code(() => checkBundlePolicy(manifest('2.0.0-rc.1'), facts()))).toBe('VERSION_NOT_NEWER');
    expect(code(() => checkBundlePolicy(manifest('1.9.9'), facts({ allowDowngrade: true })))).toBeUndefined();
  });

  it('refuses payloads that do not fit the slot kind or size', () => {
    const archive: ModuleSpec = { name: 'fs', type: 'archive', sha256: 'b'.repeat(64), size: 10, unpackedSize: 10 };
    const mod: ModuleSpec = { name: 'm', type: 'module', sha256: 'c'.repeat(64), size: 10, unpackedSize: 10, target: '/opt/m' };
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [archive]), facts()))).toBe('PAYLOAD_SLOT_MISMATCH');
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [image, image]), facts()))).toBe('PAYLOAD_SLOT_MISMATCH');
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [{ ...image, size: 5000 }]), facts()))).toBe('SLOT_TOO_SMALL');
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [{ ...image, size: 100, compression: 'gzip', unpackedSize: 5000 }]), facts()))).toBe('SLOT_TOO_SMALL');
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [image]), facts({ slotKind: 'fs' })))).toBe('PAYLOAD_SLOT_MISMATCH');
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [mod, archive]), facts({ slotKind: 'fs' })))).toBe('PAYLOAD_SLOT_MISMATCH');
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [archive, mod]), facts({ slotKind: 'fs' })))).toBeUndefined();
    expect(code(() => checkBundlePolicy(manifest('3.0.0', [mod]), facts({ slotKind: 'fs' })))).toBeUndefined();
  });
});
