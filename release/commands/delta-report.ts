/** `ota-release delta-report`: what a device running OLD downloads to install NEW by delta. */
import { UsageError, defineCommand, formatBytes, list, printJson } from '../../shared/cli.js';
import { deltaReport } from '../../shared/delta/report.js';
import { PLAN_DEFAULTS } from '../../shared/delta/plan.js';
import { loadKeyring } from '../../shared/signing.js';

function count(raw: unknown, opt: string, def: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${opt} must be a whole number, not "${String(raw)}"`);
  return n;
}

/** The delta-report command. */
export const deltaReportCommand = defineCommand({
  name: 'delta-report',
  summary: 'Bytes and requests a device running OLD downloads to install NEW by delta',
  usage: 'ota-release delta-report OLD.otab NEW.otab --keyring PUB [--json]',
  help: `Runs the agent's own planner: the chunks of NEW's image that OLD's image has are taken
from the device's running slot, the rest fetched from NEW with single Range requests. OLD
may be a format 1 bundle (its image is chunked now); NEW must carry a chunk index.

Fields (--json): bundleBytes (what a full install downloads), wireBytes (what the delta
install downloads: head, index and chunk ranges), requests (HTTP requests), imageBytes,
localBytes, fetchedImageBytes, chunks, fetchedChunks, headBytes.

Options:
  --keyring FILE        trusted release public key (repeat for several)
  --max-requests N      the agent's delta.maxRequests (default ${PLAN_DEFAULTS.maxRequests})
  --merge-gap BYTES     the agent's delta.mergeGapBytes (default ${PLAN_DEFAULTS.mergeGapBytes})
  --json                print the report as JSON`,
  options: { keyring: { type: 'string', multiple: true }, json: { type: 'boolean' }, 'max-requests': { type: 'string' }, 'merge-gap': { type: 'string' } },
  positionals: [2, 2],
  async run({ values, positionals }) {
    const keyrings = list(values.keyring);
    if (keyrings.length === 0) throw new UsageError('option --keyring is required (a trusted release public key)');
    const [oldPath, newPath] = positionals as [string, string];
    const r = await deltaReport(oldPath, newPath, await loadKeyring(keyrings), {
      maxRequests: Math.max(1, count(values['max-requests'], 'max-requests', PLAN_DEFAULTS.maxRequests)),
      mergeGapBytes: count(values['merge-gap'], 'merge-gap', PLAN_DEFAULTS.mergeGapBytes),
    });
    if (values.json) {
      printJson(r);
      return;
    }
    const pct = (a: number, b: number): string => `${((100 * a) / Math.max(1, b)).toFixed(2)} %`;
    process.stdout.write(
      `${newPath} for a device running ${oldPath}:\n` +
        `  full download  ${formatBytes(r.bundleBytes)}\n` +
        `  delta download ${formatBytes(r.wireBytes)} (${pct(r.wireBytes, r.bundleBytes)}) in ${r.requests} requests, of which head and index ${formatBytes(r.headBytes)}\n` +
        `  image          ${formatBytes(r.imageBytes)}: ${formatBytes(r.localBytes)} from the running slot, ${formatBytes(r.fetchedImageBytes)} fetched (${r.fetchedChunks} of ${r.chunks} chunks)\n`,
    );
  },
});
