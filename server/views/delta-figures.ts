/**
 * `delta-report` figures for the console: what a device running an earlier release of the same
 * product downloads to install this one by delta. Computed on demand by `ota-release
 * delta-report`'s own code (shared/delta/report.ts: the agent's head reader and planner) over
 * the stored bundles, whose signed chunk indexes it verifies against the release keys.
 *
 * Bundles are content-addressed and immutable, so a figure for a pair of sha256s never changes:
 * results are kept in a bounded in-memory LRU, one computation per pair runs at a time
 * (concurrent asks share it), and computations run one after another so that a console cannot
 * take the cores check-ins need.
 */
import { OtaError, errorMessage, isOtaError } from '../../shared/errors.js';
import { PLAN_DEFAULTS } from '../../shared/delta/plan.js';
import { deltaReport, type DeltaReport, type ReportBundle } from '../../shared/delta/report.js';
import type { Keyring } from '../../shared/signing.js';
import { compareVersions } from '../../shared/version.js';

/** The release facts the figures need (a ReleaseView has them). */
export interface DeltaRelease {
  product: string;
  version: string;
  sha256: string;
  compatible: string[];
}

/** One earlier release and what a device running it downloads, or why that is not known. */
export interface DeltaFigure {
  from: string;
  fromSha256: string;
  report: DeltaReport | null;
  error: { code: string; message: string } | null;
}

type Failure = { code: string; message: string };

/** Entries kept by default: a figure is a dozen numbers, so this is a few hundred KiB at most. */
export const DELTA_CACHE_ENTRIES = 512;

/** The earlier releases of `target`'s product that share a device type with it, newest first. */
export function previousReleases(target: DeltaRelease, all: readonly DeltaRelease[], limit: number): DeltaRelease[] {
  const types = new Set(target.compatible);
  return all
    .filter((r) => r.product === target.product && compareVersions(r.version, target.version) < 0 && r.compatible.some((c) => types.has(c)))
    .sort((a, b) => compareVersions(b.version, a.version))
    .slice(0, limit);
}

/** Computes and keeps delta figures between stored bundles. */
export class DeltaFigures {
  private readonly done = new Map<string, DeltaReport | Failure>();
  private readonly running = new Map<string, Promise<DeltaReport>>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Computations made (not answered from the cache): tests and metrics read it. */
  computed = 0;

  constructor(
    private readonly keyring: Keyring,
    /** Where a stored bundle's bytes are read from: a local file, or the bundle store itself. */
    private readonly bundleFile: (sha256: string) => string | ReportBundle,
    private readonly maxEntries = DELTA_CACHE_ENTRIES,
  ) {}

  /** The figure for a device running `from` that installs `to`. */
  async figure(from: DeltaRelease, to: DeltaRelease): Promise<DeltaFigure> {
    const key = `${from.sha256}:${to.sha256}`;
    const base = { from: from.version, fromSha256: from.sha256 };
    let got = this.done.get(key);
    if (got !== undefined) {
      // Least recently used goes first: re-insert on every hit.
      this.done.delete(key);
      this.done.set(key, got);
    } else {
      try {
        got = await this.compute(key, from.sha256, to.sha256);
      } catch (err) {
        // A bundle's own content (no index, not signed by a trusted key) gives the same answer
        // every time and is kept; a storage failure is not, so the next ask tries again.
        const error = { code: isOtaError(err) ? err.code : 'SERVER_INTERNAL', message: errorMessage(err) };
        if (!isOtaError(err) || err.code === 'BUNDLE_NOT_FOUND') return { ...base, report: null, error };
        got = error;
      }
      this.keep(key, got);
    }
    return 'wireBytes' in got ? { ...base, report: got, error: null } : { ...base, report: null, error: got };
  }

  private compute(key: string, fromSha: string, toSha: string): Promise<DeltaReport> {
    const running = this.running.get(key);
    if (running) return running;
    const job = this.queue.then(async () => {
      this.computed++;
      try {
        return await deltaReport(this.bundleFile(fromSha), this.bundleFile(toSha), this.keyring, PLAN_DEFAULTS);
      } catch (err) {
        if (isOtaError(err)) throw err;
        const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'BUNDLE_NOT_FOUND' : 'SERVER_INTERNAL';
        throw new OtaError(code, `delta figures of bundle ${toSha} from ${fromSha}: ${errorMessage(err)}`, { cause: err });
      }
    });
    const settled = job.finally(() => this.running.delete(key));
    this.queue = settled.catch(() => undefined);
    this.running.set(key, settled);
    return settled;
  }

  private keep(key: string, value: DeltaReport | Failure): void {
    this.done.set(key, value);
    while (this.done.size > this.maxEntries) this.done.delete(this.done.keys().next().value as string);
  }

  /** Figures held in memory. */
  get size(): number {
    return this.done.size;
  }
}
