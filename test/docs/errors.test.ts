/** Keeps docs and the error catalogue in step: every registered code is documented, and no more. */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allErrorCodes } from '../../shared/errors.js';
import { ROOT } from '../helpers/cli.js';

async function documentedCodes(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const f of await readdir(join(ROOT, 'docs'))) {
    if (!f.endsWith('.md')) continue;
    const text = await readFile(join(ROOT, 'docs', f), 'utf8');
    for (const m of text.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)) found.set(m[1]!, f);
  }
  return found;
}

describe('error catalogue documentation', () => {
  it('documents every registered code and no code that does not exist', async () => {
    // Importing a component's entry modules registers its catalogue.
    await import('../../shared/index.js');
    for (const mod of ['server/errors.ts', 'agent/errors.ts']) {
      if (existsSync(join(ROOT, mod))) await import(join(ROOT, mod));
    }
    const registered = [...allErrorCodes().keys()].sort();
    const documented = await documentedCodes();
    expect(registered.filter((c) => !documented.has(c)), 'registered but not documented').toEqual([]);
    expect([...documented.keys()].filter((c) => !allErrorCodes().has(c)), 'documented but not registered').toEqual([]);
  });
});
