/** Output excerpts for the history: bounded, one paragraph, the end kept (errors come last). */

/** Characters of output kept per check. */
export const EXCERPT_CHARS = 1000;

/** The last EXCERPT_CHARS characters of `text`, trimmed, with a mark when cut. */
export function excerpt(text: string | undefined): string {
  const t = (text ?? '').trim();
  return t.length <= EXCERPT_CHARS ? t : `…${t.slice(t.length - EXCERPT_CHARS)}`;
}
