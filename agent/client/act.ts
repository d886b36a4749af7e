/**
 * Carrying out a verified directive: `update` starts an install transaction (origin `server`)
 * from the release URL with the announced size, sha256 and manifest, run up to the reboot;
 * `rollback` starts the technician rollback (reason `technician`, the directive id recorded).
 * A directive the device will not follow (an incompatible or older release, no committed slot
 * to go back to) is recorded in the history; a release refused for what it is, is remembered
 * so that the next check-ins do not download its manifest again and again.
 */
import { randomUUID } from 'node:crypto';
import { formatError } from '../../shared/cli.js';
import { isVersion } from '../../shared/version.js';
import { isOtaError, type OtaError } from '../../shared/errors.js';
import type { Directive, UpdateRelease } from '../../shared/protocol.js';
import type { Device } from '../device.js';
import { install } from '../install.js';
import type { RunResult } from '../machine/runner.js';
import { rollback } from '../technician.js';
import '../errors.js';

/** What the device did about a directive. */
export type Action =
  | { readonly type: 'none' }
  | { readonly type: 'update'; readonly version: string; readonly run?: RunResult; readonly refused?: OtaError; readonly skipped?: boolean }
  | { readonly type: 'rollback'; readonly id: string; readonly run?: RunResult; readonly refused?: OtaError };

/** How to act. */
export interface ActOptions {
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number | null) => void;
  /** sha256 of releases refused for what they are; shared between check-ins of one process. */
  readonly refusedReleases: Set<string>;
}

/** A refusal the bundle earned itself (signature, format, policy): asking again will not change it. */
function refusesRelease(err: OtaError): boolean {
  return err.status === 400 || err.code === 'BUNDLE_CHANGED';
}

function recordRefusal(dev: Device, directive: Directive, err: OtaError, what: string): void {
  dev.store.write(`directive ${directive.type} not carried out`, (w) =>
    w.event({ type: 'server', slot: dev.booted, reason: `directive-refused:${err.code}`, details: { error: formatError(err), directive: what } }),
  );
}

async function update(dev: Device, release: UpdateRelease, opts: ActOptions): Promise<Action> {
  const what = `update ${release.version}`;
  if (opts.refusedReleases.has(release.sha256)) return { type: 'update', version: release.version, skipped: true };
  opts.log(`server: ${what} (${release.size} bytes from ${release.url})`);
  try {
    const run = await install(dev, {
      source: release.url,
      origin: 'server',
      size: release.size,
      sha256: release.sha256,
      manifest: Buffer.from(release.manifest, 'base64'),
      log: opts.log,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    return { type: 'update', version: release.version, run };
  } catch (err) {
    // A transient error leaves a transaction in flight (resumed at the next check-in), or none
    // was started (tried again at the next check-in); being stopped ends the loop.
    if (!isOtaError(err) || err.kind === 'transient') throw err;
    // A transaction in flight (another process's, or this one's final step that failed) is
    // not a refusal of the release: the loop resumes it.
    if (dev.store.current()) throw err;
    const directive: Directive = { type: 'update', release };
    recordRefusal(dev, directive, err, what);
    if (refusesRelease(err)) opts.refusedReleases.add(release.sha256);
    opts.log(`server: ${what} refused: ${formatError(err)}`);
    return { type: 'update', version: release.version, refused: err };
  }
}

async function rollbackTo(dev: Device, id: string, opts: ActOptions): Promise<Action> {
  opts.log(`server: rollback requested (${id})`);
  try {
    const run = await rollback(dev, { origin: 'server', directiveId: id, log: opts.log, ...(opts.signal ? { signal: opts.signal } : {}) });
    return { type: 'rollback', id, run };
  } catch (err) {
    if (!isOtaError(err) || err.kind === 'transient') throw err;
    recordRefusal(dev, { type: 'rollback', id }, err, `rollback ${id}`);
    // The server shows the request as refused, with the reason, instead of just "delivered".
    const version = dev.store.highestCommitted();
    dev.store.write(`rollback ${id}: refusal reported`, (w) =>
      w.report({
        id: randomUUID(),
        transaction: id,
        version: version !== null && isVersion(version) ? version : '0.0.0',
        state: 'failed',
        outcome: 'failure',
        reason: `${err.code}: ${err.message}`.slice(0, 1024),
        details: { kind: 'rollback', directive: id, refused: true },
        at: w.now,
      }),
    );
    opts.log(`server: rollback ${id} not carried out: ${formatError(err)}`);
    return { type: 'rollback', id, refused: err };
  }
}

/** Carries out `directive`; a transient failure or AGENT_STOPPED is thrown. */
export async function act(dev: Device, directive: Directive, opts: ActOptions): Promise<Action> {
  switch (directive.type) {
    case 'none':
      return { type: 'none' };
    case 'update':
      return update(dev, directive.release, opts);
    case 'rollback':
      return rollbackTo(dev, directive.id, opts);
  }
}
