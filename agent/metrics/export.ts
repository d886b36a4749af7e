/** Rewrites the metrics textfile after a check, when the config names one. */
import { errorMessage } from '../../shared/errors.js';
import type { Device } from '../actions/device.js';
import { snapshotOf } from './snapshot.js';
import { writeTextfile } from './textfile.js';

/** Writes `metricsTextfile`; a failure is logged, never fatal: metrics must not stop updates. */
export async function exportTextfile(dev: Device, checkin: { at: Date; ok: boolean }, log: (l: string) => void): Promise<void> {
  const file = dev.config.metricsTextfile;
  if (file === undefined) return;
  try {
    await writeTextfile(file, snapshotOf(dev, checkin));
  } catch (err) {
    log(`metrics textfile ${file}: not written (${errorMessage(err)})`);
  }
}
