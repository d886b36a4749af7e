/**
 * A reader for one object of the config file: each accessor checks one key's type and range
 * and names the key and its section when it fails; `only` rejects keys nobody asked for.
 */
import { isAbsolute, resolve } from 'node:path';
import { OtaError } from '../../shared/errors.js';

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** One JSON object of the config, with the path used in error messages. */
export class Section {
  constructor(
    private readonly obj: Record<string, unknown>,
    /** e.g. "slots[0]"; '' for the top level. */
    readonly where: string,
    private readonly file: string,
    private readonly baseDir: string,
  ) {}

  /** Wraps a value that must be an object. */
  static of(v: unknown, where: string, file: string, baseDir: string): Section {
    if (typeOf(v) !== 'object') throw new OtaError('CONFIG_INVALID', `config ${file}: ${where || 'the top level'} must be a JSON object, not ${typeOf(v)}`);
    return new Section(v as Record<string, unknown>, where, file, baseDir);
  }

  private name(key: string): string {
    if (key === '') return this.where || 'the top level';
    return this.where ? `${this.where}.${key}` : key;
  }

  /** Throws for an invalid value of `key`. */
  invalid(key: string, why: string): never {
    throw new OtaError('CONFIG_INVALID', `config ${this.file}: "${this.name(key)}" ${why}`);
  }

  /** Rejects every key not in `keys`, naming it and its section. */
  only(keys: readonly string[]): void {
    for (const k of Object.keys(this.obj)) {
      if (!keys.includes(k)) {
        throw new OtaError(
          'CONFIG_UNKNOWN_KEY',
          `config ${this.file}: unknown key "${k}" in section "${this.where || 'top level'}" (known keys: ${keys.join(', ')})`,
        );
      }
    }
  }

  /** An object of short strings (e.g. device.attributes), at most `max` entries. */
  stringMap(key: string, max: number): Readonly<Record<string, string>> {
    const v = this.get(key, false);
    if (v === undefined) return {};
    if (typeOf(v) !== 'object') this.invalid(key, `must be an object of strings, not ${typeOf(v)}`);
    const out: Record<string, string> = {};
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length > max) this.invalid(key, `has ${entries.length} entries; at most ${max}`);
    for (const [k, x] of entries) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(k)) this.invalid(key, `has the key "${k}": use 1-64 letters, digits, ".", "_" or "-"`);
      if (typeof x !== 'string' || x.length > 256) this.invalid(`${key}.${k}`, 'must be a string of at most 256 characters');
      out[k] = x;
    }
    return out;
  }

  /** A number in [min, max] (or the default). */
  number(key: string, min: number, max: number, def: number): number {
    const v = this.get(key, false);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.invalid(key, `must be a number from ${min} to ${max}`);
    return v;
  }

  /** True when the key is present. */
  has(key: string): boolean {
    return key in this.obj;
  }

  private get(key: string, required: boolean): unknown {
    if (!(key in this.obj)) {
      if (required) throw new OtaError('CONFIG_INVALID', `config ${this.file}: "${this.name(key)}" is required`);
      return undefined;
    }
    return this.obj[key];
  }

  /** A non-empty string. */
  string(key: string, def?: string): string {
    const v = this.get(key, def === undefined);
    if (v === undefined) return def as string;
    if (typeof v !== 'string' || v === '') this.invalid(key, `must be a non-empty string, not ${typeOf(v)}`);
    return v;
  }

  /** A string that may be absent. */
  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  /** A path; relative paths are taken from the config file's directory. */
  path(key: string, def?: string): string {
    const p = this.string(key, def);
    return isAbsolute(p) ? p : resolve(this.baseDir, p);
  }

  /** A whole number within [min, max]. */
  int(key: string, min: number, max: number, def?: number): number {
    const v = this.get(key, def === undefined);
    if (v === undefined) return def as number;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      this.invalid(key, `must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** true or false. */
  bool(key: string, def?: boolean): boolean {
    const v = this.get(key, def === undefined);
    if (v === undefined) return def as boolean;
    if (typeof v !== 'boolean') this.invalid(key, `must be true or false, not ${JSON.stringify(v)}`);
    return v;
  }

  /** A list of strings (each non-empty); `minLength` items at least. */
  strings(key: string, minLength: number, def?: readonly string[]): readonly string[] {
    const v = this.get(key, def === undefined);
    if (v === undefined) return def as readonly string[];
    if (!Array.isArray(v)) this.invalid(key, `must be an array of strings, not ${typeOf(v)}`);
    v.forEach((s, i) => {
      if (typeof s !== 'string' || s === '') this.invalid(`${key}[${i}]`, `must be a non-empty string, not ${typeOf(s)}`);
    });
    if (v.length < minLength) this.invalid(key, `must list at least ${minLength} item(s)`);
    return Object.freeze([...(v as string[])]);
  }

  /** A list of paths, each resolved like `path`. */
  paths(key: string, minLength: number): readonly string[] {
    return Object.freeze(this.strings(key, minLength).map((p) => (isAbsolute(p) ? p : resolve(this.baseDir, p))));
  }

  /** A command line: program and arguments as an array. */
  argv(key: string, def?: readonly string[]): readonly string[] {
    return this.strings(key, 1, def);
  }

  /** A nested object as a Section (absent: an empty one). */
  section(key: string): Section {
    const v = this.get(key, false);
    return Section.of(v ?? {}, this.name(key), this.file, this.baseDir);
  }

  /** A list of objects, each as a Section. */
  sections(key: string, def: readonly unknown[] = []): Section[] {
    const v = this.get(key, false) ?? def;
    if (!Array.isArray(v)) this.invalid(key, `must be an array, not ${typeOf(v)}`);
    return (v as unknown[]).map((item, i) => Section.of(item, this.name(`${key}[${i}]`), this.file, this.baseDir));
  }
}
