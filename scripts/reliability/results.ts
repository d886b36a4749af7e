/**
 * The reliability suite's results: one row per scenario (power-cut sweep, network fault run,
 * hostile-input family, load run), rendered as the table of docs/RELIABILITY.md and printed
 * at the end of a run. Rows are merged into the document by id, so reproducing one row with
 * `--only part:scenario --write-doc` updates that row and leaves the others as they were.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { notReproduced, sortFailures } from './known.js';

/** The four parts of the suite. */
export type Part = 'powercut' | 'network' | 'hostile' | 'load';

/** All parts, in the order they run and appear in the table. */
export const PARTS: readonly Part[] = ['hostile', 'powercut', 'network', 'load'];

/** One line of the table. */
export interface Row {
  /** Stable key, `part:scenario`; also what `--only` selects. */
  id: string;
  part: Part;
  /** What was tried, in words. */
  what: string;
  /** Points, runs or inputs tried. */
  tried: number;
  /** Of those, how many held (survived, completed, refused as they must). */
  held: number;
  /** The figures that matter for this row, in words (byte ratios, rates, codes). */
  figures: string;
  /** Why a point did not hold, one line each; empty when every one held. */
  failures: string[];
  /** Failures of a known, reported issue (scripts/reliability/known.ts), prefixed with its id. */
  known: string[];
  /** Things worth knowing that are not failures (e.g. refused, but with another code than expected). */
  notes: string[];
  /** Wall-clock seconds the row took. */
  seconds: number;
  /** `full` (every point) or `fast` (the CI subset). */
  mode: 'full' | 'fast';
  /** When it ran (ISO-8601). */
  at: string;
}

/** True when no point of the row failed in a way not already reported as a known issue. */
export const rowHeld = (r: Row): boolean => r.tried > 0 && r.failures.length === 0;

/** A row from what a part measured: failures of known issues are set apart, fixed ones noted. */
export function makeRow(r: Omit<Row, 'known' | 'notes' | 'at'> & { notes?: string[] }): Row {
  const { failures, known } = sortFailures(r.id, r.failures);
  const fixed = notReproduced(r.id, known).map((i) => `known issue ${i.id} did not reproduce: if it was fixed, delete it from scripts/reliability/known.ts`);
  return { ...r, failures, known, notes: [...(r.notes ?? []), ...fixed], at: new Date().toISOString() };
}

function heldCell(r: Row): string {
  const ids = [...new Set(r.known.map((k) => /^\[(\w+)\]/.exec(k)?.[1] ?? '?'))];
  return `${r.held}${ids.length ? ` (${r.known.length} known: ${ids.join(', ')})` : ''}${rowHeld(r) ? '' : ' ✗'}`;
}

/** The command that reproduces a row. */
export function commandFor(r: Pick<Row, 'id' | 'mode'>): string {
  return `npm run test:reliability -- --only ${r.id}${r.mode === 'fast' ? ' --fast' : ''}`;
}

const PART_TITLE: Record<Part, string> = { powercut: 'power cut', network: 'network faults', hostile: 'hostile input', load: 'load' };

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The markdown table of `rows`, in part order. */
export function renderTable(rows: readonly Row[]): string {
  const sorted = [...rows].sort((a, b) => PARTS.indexOf(a.part) - PARTS.indexOf(b.part) || a.id.localeCompare(b.id));
  const lines = [
    '| part | scenario | tried | held | figures | reproduce |',
    '|---|---|---:|---:|---|---|',
    ...sorted.map((r) =>
      `| ${PART_TITLE[r.part]} | ${cell(r.what)} | ${r.tried} | ${heldCell(r)} | ${cell(r.figures)} | \`${commandFor(r)}\` |`,
    ),
  ];
  return lines.join('\n');
}

/** Plain-text rendering for the terminal: one block per row, failures listed under it. */
export function renderText(rows: readonly Row[]): string {
  const out: string[] = [];
  for (const r of rows) {
    out.push(`${rowHeld(r) ? 'ok  ' : 'FAIL'} ${r.id.padEnd(34)} ${String(r.held).padStart(5)}/${String(r.tried).padEnd(5)} ${r.seconds.toFixed(0).padStart(5)} s  ${r.figures}`);
    for (const f of r.failures.slice(0, 20)) out.push(`       ✗ ${f}`);
    if (r.failures.length > 20) out.push(`       ✗ ... and ${r.failures.length - 20} more`);
    for (const k of r.known) out.push(`       ~ ${k}`);
    for (const n of r.notes.slice(0, 10)) out.push(`       · ${n}`);
    if (r.notes.length > 10) out.push(`       · ... and ${r.notes.length - 10} more`);
  }
  return out.join('\n');
}

/** Markers of the generated section of docs/RELIABILITY.md. */
export const BEGIN = '<!-- BEGIN GENERATED: npm run test:reliability -- --write-doc; do not edit by hand -->';
/** End marker of the generated section. */
export const END = '<!-- END GENERATED -->';
const DATA = /<!-- rows: (.*?) -->/s;

/** The rows stored in a document's generated section (none when it has none). */
export function rowsInDoc(doc: string): Row[] {
  const m = DATA.exec(doc);
  if (!m?.[1]) return [];
  return JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')) as Row[];
}

/** The document with its generated section replaced by the table of `rows` merged over the stored ones. */
export function mergeIntoDoc(doc: string, rows: readonly Row[]): string {
  const byId = new Map(rowsInDoc(doc).map((r) => [r.id, r]));
  for (const r of rows) byId.set(r.id, r);
  const all = [...byId.values()];
  const newest = all.map((r) => r.at).sort().at(-1) ?? '';
  const section = [
    BEGIN,
    '',
    renderTable(all),
    '',
    `Last row written ${newest.slice(0, 16).replace('T', ' ')} UTC; each row's figures come from the run that wrote it.`,
    '',
    // The rows themselves, so that a later partial run can update its rows and keep the others.
    `<!-- rows: ${Buffer.from(JSON.stringify(all)).toString('base64')} -->`,
    END,
  ].join('\n');
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a === -1 || b === -1 || b < a) throw new Error(`the document has no generated section: add the lines\n${BEGIN}\n${END}\nwhere the table goes`);
  return doc.slice(0, a) + section + doc.slice(b + END.length);
}

/** Merges `rows` into the generated section of the document at `path`. */
export async function writeDoc(path: string, rows: readonly Row[]): Promise<void> {
  const doc = await readFile(path, 'utf8');
  await writeFile(path, mergeIntoDoc(doc, rows));
}
