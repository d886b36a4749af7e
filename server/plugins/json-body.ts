/**
 * The JSON body parser: fastify's own (with its prototype-poisoning checks), after two checks
 * it does not make. Invalid UTF-8 is refused instead of silently becoming U+FFFD and being
 * stored; and nesting deeper than any otaab body needs is refused before JSON.parse, so a
 * hostile body cannot make a later JSON.stringify (storing report details) overflow the stack.
 */
import { TextDecoder } from 'node:util';
import { OtaError } from '../../shared/errors.js';
import { unencapsulated } from '../plugin.js';

/** Deepest nesting of objects and arrays a JSON body may have. */
export const MAX_JSON_DEPTH = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Deepest nesting of `[`/`{` in `text`, brackets inside strings not counted; stops past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return deepest;
}

/** Decodes and checks a JSON body; throws REQUEST_MALFORMED naming what is wrong. */
export function checkedJsonText(body: Buffer): string {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new OtaError('REQUEST_MALFORMED', 'the request body is not valid UTF-8: send JSON encoded as UTF-8');
  }
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new OtaError('REQUEST_MALFORMED', `the request body nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep`);
  }
  return text;
}

/** Replaces the application/json parser of the whole app. */
export const jsonBodyPlugin = unencapsulated('otaab-json-body', async (app) => {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    let text: string;
    try {
      text = checkedJsonText(body as Buffer);
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    void parse(req, text, done);
  });
});
