/**
 * JSON.parse refuses nothing that matters to a signed document: it silently keeps the last
 * of two equal keys, so a verifier and an installer could read different manifests.
 * This parser follows RFC 8259 exactly and reports repeated keys.
 */
import { OtaError } from './errors.js';

/** Parses `text` as strict JSON; repeated object keys throw MANIFEST_DUPLICATE_KEY. */
export function parseStrictJson(text: string, what: string): unknown {
  let i = 0;
  const fail = (why: string): never => {
    throw new OtaError('MANIFEST_INVALID_JSON', `${what}: ${why} at offset ${i}`);
  };
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  /** After a member or an element: true past a comma (more follow), false past the closing bracket. */
  const more = (close: '}' | ']'): boolean => {
    ws();
    if (text[i] === ',') {
      i++;
      return true;
    }
    if (text[i] === close) {
      i++;
      return false;
    }
    return fail(`expected "," or "${close}"`);
  };
  const value = (path: string): unknown => {
    ws();
    const c = text[i];
    if (c === '{') return object(path);
    if (c === '[') return array(path);
    if (c === '"') return string();
    if (c === 't' || c === 'f' || c === 'n') return literal();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    return fail(c === undefined ? 'unexpected end' : `unexpected character ${JSON.stringify(c)}`);
  };
  const object = (path: string): Record<string, unknown> => {
    i++;
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    ws();
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail('expected a key');
      const key = string();
      const keyPath = path ? `${path}.${key}` : key;
      if (Object.prototype.hasOwnProperty.call(out, key)) {
        throw new OtaError('MANIFEST_DUPLICATE_KEY', `${what}: key "${keyPath}" appears twice`);
      }
      ws();
      if (text[i] !== ':') fail('expected ":"');
      i++;
      out[key] = value(keyPath);
      if (!more('}')) return out;
    }
  };
  const array = (path: string): unknown[] => {
    i++;
    const out: unknown[] = [];
    ws();
    if (text[i] === ']') {
      i++;
      return out;
    }
    for (;;) {
      out.push(value(`${path}[${out.length}]`));
      if (!more(']')) return out;
    }
  };
  const string = (): string => {
    const start = i;
    i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c < 0x20) fail('control character in string');
      if (c === 0x22) break;
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape');
          i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) fail('bad escape');
        i += 2;
        continue;
      }
      i++;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const number = (): number => {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail('bad number');
    i += m[0].length;
    return Number(m[0]);
  };
  const literal = (): boolean | null => {
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail('bad literal');
  };
  const result = value('');
  ws();
  if (i !== text.length) fail('trailing characters');
  return result;
}

/** Decodes UTF-8 strictly: invalid byte sequences throw instead of becoming U+FFFD. */
export function decodeUtf8Strict(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (cause) {
    throw new OtaError('MANIFEST_INVALID_JSON', `${what}: not valid UTF-8`, { cause });
  }
}
