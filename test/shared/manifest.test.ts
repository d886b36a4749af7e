import { describe, expect, it } from 'vitest';
import { isOtaError } from '../../shared/errors.js';
import { isTargetPath, parseManifest, serializeManifest, validateManifest, type Manifest } from '../../shared/manifest.js';
import { parseStrictJson } from '../../shared/strict-json.js';
import { compareVersions, isVersion } from '../../shared/version.js';

const base = (): Record<string, unknown> => ({
  format: 1,
  product: 'gateway',
  version: '2026.11.2',
  compatible: ['rpi-cm4', 'x86-gw'],
  created: '2026-11-21T10:00:00Z',
  modules: [
    { name: 'rootfs', type: 'image', sha256: 'a'.repeat(64), size: 268435456, compression: 'none' },
    { name: 'linky2influx', type: 'module', target: '/opt/modules/linky2influx', version: '1.4.2', sha256: 'b'.repeat(64), size: 5242880, unpackedSize: 5230000 },
  ],
  notes: 'free text',
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isOtaError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'accepted';
}

describe('manifest validation', () => {
  it('accepts the example of the design and round-trips it', () => {
    const m = validateManifest(base());
    expect(parseManifest(serializeManifest(m))).toEqual(m);
  });

  it.each([
    ['unknown top-level field', (m: Record<string, unknown>) => ({ ...m, extra: 1 }), /^MANIFEST_UNKNOWN_FIELD: .*"extra"/],
    ['unknown module field', (m: Record<string, unknown>) => ({ ...m, modules: [{ ...(m.modules as object[])[0], script: 'x' }] }), /^MANIFEST_UNKNOWN_FIELD: .*"modules\[0\]\.script"/],
    ['size as a string', (m: Record<string, unknown>) => ({ ...m, modules: [{ ...(m.modules as object[])[0], size: '1' }] }), /^MANIFEST_FIELD_TYPE: .*"modules\[0\]\.size" must be a number, not string/],
    ['compatible as a string', (m: Record<string, unknown>) => ({ ...m, compatible: 'x86-gw' }), /^MANIFEST_FIELD_TYPE: .*"compatible" must be a array/],
    ['a negative size', (m: Record<string, unknown>) => ({ ...m, modules: [{ ...(m.modules as object[])[0], size: -1 }] }), /^MANIFEST_FIELD_VALUE: .*"modules\[0\]\.size"/],
    ['a fractional size', (m: Record<string, unknown>) => ({ ...m, modules: [{ ...(m.modules as object[])[0], size: 1.5 }] }), /^MANIFEST_FIELD_VALUE/],
    ['an uppercase hash', (m: Record<string, unknown>) => ({ ...m, modules: [{ ...(m.modules as object[])[0], sha256: 'A'.repeat(64) }] }), /^MANIFEST_FIELD_VALUE: .*sha256/],
    ['a module without target', (m: Record<string, unknown>) => ({ ...m, modules: [{ name: 'm', type: 'module', sha256: 'a'.repeat(64), size: 1, unpackedSize: 1 }] }), /^MANIFEST_FIELD_MISSING: .*target/],
    ['a module target with ..', (m: Record<string, unknown>) => ({ ...m, modules: [{ name: 'm', type: 'module', target: '/opt/../etc', sha256: 'a'.repeat(64), size: 1, unpackedSize: 1 }] }), /^MANIFEST_FIELD_VALUE: .*target/],
    ['an archive without unpackedSize', (m: Record<string, unknown>) => ({ ...m, modules: [{ name: 'r', type: 'archive', sha256: 'a'.repeat(64), size: 1 }] }), /^MANIFEST_FIELD_MISSING: .*unpackedSize/],
    ['a gzip image without unpackedSize', (m: Record<string, unknown>) => ({ ...m, modules: [{ name: 'r', type: 'image', compression: 'gzip', sha256: 'a'.repeat(64), size: 1 }] }), /^MANIFEST_FIELD_MISSING: .*unpackedSize/],
    ['gzip on an archive', (m: Record<string, unknown>) => ({ ...m, modules: [{ name: 'r', type: 'archive', compression: 'gzip', sha256: 'a'.repeat(64), size: 1, unpackedSize: 1 }] }), /^MANIFEST_FIELD_VALUE: .*compression/],
    ['a payload name with a slash', (m: Record<string, unknown>) => ({ ...m, modules: [{ ...(m.modules as object[])[0], name: 'a/b' }] }), /^MANIFEST_FIELD_VALUE: .*name/],
    ['a version that is not semver', (m: Record<string, unknown>) => ({ ...m, version: 'v1' }), /^MANIFEST_FIELD_VALUE: .*"version"/],
    ['a local time', (m: Record<string, unknown>) => ({ ...m, created: '2026-11-21 10:00' }), /^MANIFEST_FIELD_VALUE: .*"created"/],
    ['no modules', (m: Record<string, unknown>) => ({ ...m, modules: [] }), /^MANIFEST_FIELD_VALUE: .*"modules"/],
    ['null notes', (m: Record<string, unknown>) => ({ ...m, notes: null }), /^MANIFEST_FIELD_TYPE: .*"notes" must be a string, not null/],
  ])('rejects %s, naming the field', (_name, mutate, pattern) => {
    expect(codeOf(() => validateManifest(mutate(base())))).toMatch(pattern);
  });

  it('rejects duplicate keys anywhere, naming their path', () => {
    const text = '{"format":1,"modules":[{"name":"a","name":"b"}]}';
    expect(codeOf(() => parseStrictJson(text, 'm'))).toMatch(/^MANIFEST_DUPLICATE_KEY: .*"modules\[0\]\.name"/);
  });

  it('rejects invalid UTF-8 and JSON that JSON.parse would not see as equal', () => {
    expect(codeOf(() => parseManifest(Buffer.from([0x7b, 0xff, 0x7d])))).toMatch(/^MANIFEST_INVALID_JSON: .*UTF-8/);
    expect(codeOf(() => parseStrictJson('{"a":1,}', 'm'))).toMatch(/^MANIFEST_INVALID_JSON/);
    expect(codeOf(() => parseStrictJson('{"a":01}', 'm'))).toMatch(/^MANIFEST_INVALID_JSON/);
    expect(parseStrictJson('{"a":[1,2.5e3,"x\\u0041",true,null]}', 'm')).toEqual({ a: [1, 2500, 'xA', true, null] });
  });

  it('keeps __proto__ as plain data', () => {
    const v = parseStrictJson('{"__proto__":{"polluted":1}}', 'm') as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(v)).toEqual(['__proto__']);
  });

  it('checks target paths', () => {
    expect(isTargetPath('/opt/modules/x')).toBe(true);
    for (const bad of ['opt/x', '/', '/opt//x', '/opt/./x', '/opt/../x', '/opt/x\0']) expect(isTargetPath(bad)).toBe(false);
  });

  it('types a validated manifest', () => {
    const m: Manifest = validateManifest(base());
    expect(m.modules[1]?.target).toBe('/opt/modules/linky2influx');
  });
});

describe('versions', () => {
  it('orders by semantic versioning precedence', () => {
    const sorted = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '2026.9.30', '2026.11.2', '2026.11.10'];
    for (let i = 0; i + 1 < sorted.length; i++) {
      expect(compareVersions(sorted[i]!, sorted[i + 1]!), `${sorted[i]} < ${sorted[i + 1]}`).toBeLessThan(0);
      expect(compareVersions(sorted[i + 1]!, sorted[i]!)).toBeGreaterThan(0);
    }
    expect(compareVersions('1.0.0+build.1', '1.0.0+build.2')).toBe(0);
  });

  it('recognises versions', () => {
    expect(isVersion('2026.11.2')).toBe(true);
    expect(isVersion('1.2')).toBe(false);
    expect(isVersion('01.2.3')).toBe(false);
  });
});
