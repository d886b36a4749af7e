/**
 * The one check that keeps the error catalogue, the code and docs/ERRORS.md in step: every code
 * defined is raised somewhere, every code raised is documented, every code documented is
 * defined, and docs/ERRORS.md lists each code exactly once with the catalogue's status, kind,
 * message and fix. (A misspelt code at a raise site already fails `npm run typecheck`.)
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../shared/error-catalogue.js';
import { ROOT } from '../helpers/cli.js';

const SOURCE_DIRS = ['agent', 'server', 'shared', 'release'];
const CATALOGUE = 'shared/error-catalogue.ts';

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(path)));
    else if (e.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Source text without comments, so a code named in prose does not count as raised. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Codes in string literals of the source, and those at an explicit raise site (`new OtaError('X'`, `code: 'X'`, `error: 'X'`). */
async function raisedCodes(): Promise<{ literals: Set<string>; raised: Map<string, string> }> {
  const literals = new Set<string>();
  const raised = new Map<string, string>();
  for (const dir of SOURCE_DIRS) {
    for (const file of await sources(dir)) {
      if (file === CATALOGUE) continue;
      const text = code(await readFile(join(ROOT, file), 'utf8'));
      for (const m of text.matchAll(/'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)'/g)) literals.add(m[1]!);
      for (const m of text.matchAll(/(?:new OtaError\(\s*|\bcode: |\berror: |apiError\(\s*)'([A-Z][A-Z0-9_]+)'/g)) raised.set(m[1]!, relative(ROOT, join(ROOT, file)));
    }
  }
  return { literals, raised };
}

interface Row { code: string; status: number; kind: string; message: string; fix: string }

async function documentedRows(): Promise<Row[]> {
  const text = await readFile(join(ROOT, 'docs', 'ERRORS.md'), 'utf8');
  return [...text.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| (\d+) \| (\w+) \| (.*) \| (.*) \|$/gm)].map((m) => ({
    code: m[1]!, status: Number(m[2]), kind: m[3]!, message: m[4]!, fix: m[5]!,
  }));
}

describe('the error catalogue', () => {
  it('has every code defined raised, every code raised documented, and every code documented defined, once', async () => {
    const defined = Object.keys(ERRORS);
    const { literals, raised } = await raisedCodes();
    const rows = await documentedRows();
    const documented = rows.map((r) => r.code);

    expect(defined.filter((c) => !literals.has(c) && !raised.has(c)), 'defined but never raised').toEqual([]);
    expect([...raised].filter(([c]) => !documented.includes(c)).map(([c, f]) => `${c} (${f})`), 'raised but not documented in docs/ERRORS.md').toEqual([]);
    expect(documented.filter((c) => !(c in ERRORS)), 'documented but not defined').toEqual([]);
    expect(documented.filter((c, i) => documented.indexOf(c) !== i), 'documented more than once').toEqual([]);
    expect(defined.filter((c) => !documented.includes(c)), 'defined but not documented').toEqual([]);
    const expected = Object.entries(ERRORS).map(([c, s]) => ({ code: c, status: s.status, kind: s.kind, message: s.message, fix: s.fix }));
    const byCode = new Map(rows.map((r) => [r.code, r]));
    for (const e of expected) expect(byCode.get(e.code), `docs/ERRORS.md row for ${e.code}`).toEqual(e);
  });

  it('is documented only in docs/ERRORS.md: the other documents link to it', async () => {
    for (const f of await readdir(join(ROOT, 'docs'))) {
      if (!f.endsWith('.md') || f === 'ERRORS.md') continue;
      const text = await readFile(join(ROOT, 'docs', f), 'utf8');
      expect(text.match(/^\| `[A-Z][A-Z0-9_]+` \| \d{3} \|/gm), `code rows in docs/${f}`).toBeNull();
    }
  });
});
