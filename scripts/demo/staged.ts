/**
 * The demo's staged-rollout chapter: a fleet of 120 EV chargers (simulated devices with real
 * enrollments, signed check-ins and the agent's reports; scripts/fleet/sim-devices.ts) gets a
 * bad release through a staged rollout on the default ladder. The first phase fails its health
 * check, the rollout pauses itself, and the other chargers are never offered it. A fixed
 * release then walks the ladder to 100 %.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SimFleet, type Fate } from '../fleet/sim-devices.js';
import { api } from '../fleet/server.js';

/** What the chapter needs from the demo. */
export interface StagedStoryOptions {
  work: string;
  url: string;
  ops: string;
  enroll: string;
  say: (text: string) => void;
  detail: (text: string) => void;
  release: (work: string, args: string[], env?: Record<string, string>) => Promise<string>;
}

interface Shown {
  rollout: { id: string; state: string; phase: number; reason: string | null; totals: { members: number; success: number; failure: number } };
}

/** Tells the story; throws when a step does not happen as narrated. */
export async function stagedRolloutStory(o: StagedStoryOptions): Promise<void> {
  const { work, url, ops, say, detail } = o;
  const cli = (args: string[]): Promise<string> => o.release(work, [...args, '--server', url], { OTA_TOKEN: ops });
  say('A second product, EV chargers: 120 of them enroll (simulated devices: real check-ins and reports, no GRUB).');
  const fleet = await SimFleet.enroll({ url, enrollToken: o.enroll, count: 120, prefix: 'evc', compatible: 'evc', product: 'charger', attributes: (i) => ({ site: i % 2 ? 'lyon' : 'berlin' }) });
  detail('charger and gateway releases now live side by side: versions belong to a product');

  for (const v of ['2.0.0', '2.0.1']) {
    const dir = join(work, `charger-${v}`, 'etc');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'os-release'), `NAME=charger\nVERSION=${v}\n`);
    await o.release(work, ['build', '--key', 'release.key', '--product', 'charger', '--version', v, '--compatible', 'evc', '--archive', `rootfs=charger-${v}`, '-o', `charger-${v}.otab`]);
    await cli(['upload', `charger-${v}.otab`]);
  }

  say('charger 2.0.0 breaks the charge controller. It goes out as a staged rollout: 1 % → 10 % → 50 % → 100 %.');
  const created = JSON.parse(await cli(['rollout', 'create', '--product', 'charger', '--version', '2.0.0', '--json'])) as Shown['rollout'];
  const bad: Fate = () => ({ ok: false, reason: 'health-check:charge-controller' });
  for (let i = 0; i < 3; i++) await fleet.round(bad);
  const paused = await api<Shown>(url, ops, 'GET', `/v1/rollouts/${created.id}`);
  detail((await cli(['rollout', 'show', created.id])).trim().split('\n').join('\n          '));
  const touched = fleet.devices.filter((d) => d.installed.includes('2.0.0')).length;
  if (paused.rollout.state !== 'paused' || touched === 0 || touched > 2) throw new Error(`expected the rollout to pause after the first phase, got ${JSON.stringify(paused.rollout)} with ${touched} installs`);
  detail(`the rollout paused itself after ${touched} failure(s) in its first phase; ${120 - touched} chargers were never offered 2.0.0`);

  say('Ops abort it and roll out the fix, charger 2.0.1, on the same ladder.');
  await cli(['rollout', 'abort', created.id]);
  const fixed = JSON.parse(await cli(['rollout', 'create', '--product', 'charger', '--version', '2.0.1', '--json'])) as Shown['rollout'];
  const good: Fate = () => ({ ok: true });
  for (let i = 0; i < 8; i++) {
    const s = await api<Shown>(url, ops, 'GET', `/v1/rollouts/${fixed.id}`);
    detail(`round ${i + 1}: phase ${s.rollout.phase + 1}/4 open, ${s.rollout.totals.success} of ${s.rollout.totals.members} chargers on 2.0.1`);
    if (s.rollout.state === 'completed') break;
    await fleet.round(good);
  }
  const done = await api<Shown>(url, ops, 'GET', `/v1/rollouts/${fixed.id}`);
  if (done.rollout.state !== 'completed' || done.rollout.totals.success !== 120) throw new Error(`expected 2.0.1 on every charger, got ${JSON.stringify(done.rollout)}`);
  detail('every phase opened once the one before succeeded; all 120 chargers run 2.0.1');
}
