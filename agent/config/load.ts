/**
 * Reads and validates the agent config once, by the field table (fields.ts): unknown keys
 * rejected with their section, defaults from the table, relative paths resolved against the
 * file's directory, and the result deep-frozen so nothing changes it at run time.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { OtaError, errorMessage } from '../../shared/errors.js';
import { parseStrictJson } from '../../shared/strict-json.js';
import { CHECK_KINDS, DEFAULT_CONFIG_PATH, childFields, type CheckKind, type Field } from './fields.js';
import { Section } from './section.js';
import type { AgentConfig, BootConfig, HealthCheckConfig, SlotConfig } from './types.js';

/** One key's value as its field says to read it; undefined when it is absent and has no default. */
function readField(s: Section, name: string, f: Field, path: string, check: CheckKind | undefined): unknown {
  const per = check ? f.perCheck?.[check] : undefined;
  const def = per ? per.default : f.default;
  if (!f.required && def === undefined && !s.has(name) && f.kind !== 'section' && f.kind !== 'list' && f.kind !== 'stringMap') return undefined;
  switch (f.kind) {
    case 'string': {
      const v = s.string(name, def as string | undefined);
      if (f.pattern && !f.pattern.test(v)) s.invalid(name, f.why ?? `must match ${String(f.pattern)}`);
      return v;
    }
    case 'url':
    case 'baseUrl': {
      const v = s.string(name, def as string | undefined);
      if (!/^https?:\/\//.test(v)) s.invalid(name, `must be an http:// or https:// URL, not "${v}"`);
      return f.kind === 'baseUrl' ? v.replace(/\/+$/, '') : v;
    }
    case 'enum': {
      const v = s.string(name, def as string | undefined);
      const values = f.values ?? [];
      if (!values.includes(v)) s.invalid(name, `must be ${values.map((x) => `"${x}"`).join(' or ')} (${f.why ?? ''}), not "${v}"`);
      return v;
    }
    case 'path': {
      const v = s.path(name, def as string | undefined);
      if (f.pattern && !f.pattern.test(v)) s.invalid(name, `${f.why ?? `must match ${String(f.pattern)}`}, not "${v}"`);
      return v;
    }
    case 'paths':
      return s.paths(name, f.min ?? 0);
    case 'argv':
      return s.argv(name, def as readonly string[] | undefined);
    case 'int':
      return s.int(name, f.min ?? 0, per ? per.max : (f.max ?? Number.MAX_SAFE_INTEGER), def as number | undefined);
    case 'bool':
      return s.bool(name, def as boolean | undefined);
    case 'number':
      return s.number(name, f.min ?? 0, f.max ?? Number.MAX_VALUE, def as number);
    case 'stringMap':
      return s.stringMap(name, f.max ?? 32);
    case 'section':
      if (!s.has(name)) {
        if (f.required) s.invalid(name, 'is required');
        if (f.optional) return undefined;
      }
      return readObject(s.section(name), path);
    case 'list':
      if (f.required && !s.has(name)) s.invalid(name, 'is required');
      return s.sections(name).map((item) => readObject(item, `${path}[]`));
  }
}

/**
 * Reads one object of the config by the fields of `path` in the table: keys the table does not
 * list there are refused, naming the key and the section. A health check takes only the keys of
 * its own kind.
 */
function readObject(s: Section, path: string): Record<string, unknown> {
  let fields = childFields(path);
  let check: CheckKind | undefined;
  if (fields.some(([, f]) => f.checks)) {
    const kinds = CHECK_KINDS.filter((k) => s.has(k));
    if (kinds.length !== 1) s.invalid('', `must have exactly one of ${CHECK_KINDS.map((k) => `"${k}"`).join(', ').replace(/, ([^,]*)$/, ' or $1')} (found ${kinds.length})`);
    check = kinds[0];
    fields = fields.filter(([, f]) => !f.checks || (check !== undefined && f.checks.includes(check)));
  }
  s.only(fields.map(([name]) => name));
  const out: Record<string, unknown> = {};
  for (const [name, f] of fields) {
    const v = readField(s, name, f, path === '' ? name : `${path}.${name}`, check);
    if (v !== undefined) out[name] = v;
  }
  return out;
}



function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Validates a parsed config object; `file` names it in errors and anchors relative paths. */
export function parseConfig(raw: unknown, file: string): AgentConfig {
  const top = Section.of(raw, '', file, dirname(resolve(file)));
  const read = readObject(top, '');
  // The rules that span keys; each key on its own was checked by the table.
  const slots = [...(read.slots as SlotConfig[])];
  if (slots.length !== 2 || slots[0]!.name === slots[1]!.name) top.invalid('slots', 'must list exactly two slots, one named "A" and one named "B"');
  if (slots[0]!.kind !== slots[1]!.kind) top.invalid('slots', 'must both be of the same kind ("raw" or "fs"): one bundle has to fit either slot');
  // By code unit, not localeCompare: a collator would page in ICU's data at every start.
  slots.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const boot = read.boot as BootConfig;
  if (boot.partitionA === boot.partitionB) top.section('boot').invalid('partitionB', `must differ from partitionA (both are ${boot.partitionA})`);
  if (boot.fwEnvConfig === boot.fwEnvConfigBackup) top.section('boot').invalid('fwEnvConfigBackup', 'must name another fw_env.config than fwEnvConfig: the two env copies are what makes a write power-safe');
  const names = new Set<string>();
  for (const c of read.healthChecks as HealthCheckConfig[]) {
    if (names.has(c.name)) top.invalid('healthChecks', `has two checks named "${c.name}"`);
    names.add(c.name);
  }
  return deepFreeze({ source: file, ...read, slots } as unknown as AgentConfig);
}

/** The config path to use: --config, else OTA_AGENT_CONFIG, else the default. */
export function configPath(option?: string): string {
  return option || process.env.OTA_AGENT_CONFIG || DEFAULT_CONFIG_PATH;
}

/** Reads, validates and freezes the config file. */
export async function loadConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new OtaError('CONFIG_UNREADABLE', `config ${path}: cannot be read (${errorMessage(cause)}); pass --config or set OTA_AGENT_CONFIG`, { cause });
  }
  let raw: unknown;
  try {
    raw = parseStrictJson(text, `config ${path}`);
  } catch (cause) {
    throw new OtaError('CONFIG_UNREADABLE', `${errorMessage(cause)}`, { cause });
  }
  return parseConfig(raw, path);
}
