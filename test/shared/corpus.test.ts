import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCorpus, type Corpus } from '../../scripts/corpus/corpus.js';
import { runCli, tempDir } from '../helpers/cli.js';

describe('ota-release verify against the hostile-bundle corpus', () => {
  let corpus: Corpus;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    corpus = await makeCorpus(t.dir);
  });
  afterAll(() => cleanup());

  const keyArgs = () => corpus.keyring.flatMap((k) => ['--keyring', k]);

  it('covers at least 25 distinct error codes', () => {
    expect(new Set(corpus.cases.map((c) => c.expect)).size).toBeGreaterThanOrEqual(25);
  });

  it('accepts the good bundle of the corpus', async () => {
    const r = await runCli('release', ['verify', corpus.good, ...keyArgs()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^OK /);
  });

  it('refuses every hostile bundle with exit 1 and one line naming its code', async () => {
    const results = [];
    // Several processes at a time: each is a real `ota-release verify`.
    for (let i = 0; i < corpus.cases.length; i += 4) {
      const batch = corpus.cases.slice(i, i + 4);
      results.push(...(await Promise.all(batch.map(async (c) => ({ c, r: await runCli('release', ['verify', c.file, ...keyArgs()]) })))));
    }
    for (const { c, r } of results) {
      expect({ name: c.name, code: r.code }).toEqual({ name: c.name, code: 1 });
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, c.name).toHaveLength(1);
      expect(lines[0], c.name).toMatch(new RegExp(`^ota-release verify: ${c.expect}: `));
      expect(r.stdout, c.name).toBe('');
    }
  });
});
