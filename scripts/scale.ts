#!/usr/bin/env node
/**
 * `npm run test:scale`: three `ota-server` processes on one PostgreSQL database, sharing one
 * data directory (bundle storage and server key) as they would share a volume or a bucket,
 * with 1,000 or more simulated devices (scripts/fleet/sim-devices.ts) spread over them. A
 * release is uploaded through one instance and a staged rollout started through another; while
 * the devices check in, download and report, one instance is killed with SIGKILL and started
 * again. Then rollbacks are requested and every such device checks in at all three instances at
 * once. It checks, and prints, that:
 *   - no answer was a 5xx, and every failed request went to the killed instance while it was down;
 *   - every report a device sent is stored, once (the database against the devices' own log);
 *   - the rollout completed with counts equal to what the devices did, member by member;
 *   - each rollback was delivered exactly once, though three instances were asked at once;
 *   - an enrollment raced at three instances succeeds once;
 *   - devices enrolled after the rollout started join it at their first check-in, at the three
 *     instances at once, each with a shuffle position of its own.
 * Exit 0 when every check holds, 1 otherwise.
 *
 *   node dist/scripts/scale.js [--devices 1000] [--timeout 300]
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { errorMessage } from '../shared/errors.js';
import { PgDatabase } from '../server/db/pg-sync.js';
import { ServerProcess, api, createToken } from './fleet/server.js';
import { SimFleet, inLanes, type Fate, type SimDevice } from './fleet/sim-devices.js';
import { schemaUrl } from './fleet/test-database.js';
import { cliPath } from './bench/util.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '1000' }, timeout: { type: 'string', default: '300' } } });
const DEVICES = Number(values.devices);
const TIMEOUT_MS = Number(values.timeout) * 1000;
const INSTANCES = 3;
/** Devices enrolled at each instance after the rollout started. */
const LATE = 30;
const PRODUCT = 'scale';
const COMPATIBLE = 'x86-gw';
const VERSION = '2.0.0';

/** One HTTP exchange the devices or ops made, as the load saw it. */
interface Exchange {
  origin: string;
  method: string;
  path: string;
  at: number;
  status: number | null;
  error: string | null;
  /** When the error was seen (a request in flight at the kill fails then, whenever it started). */
  failedAt?: number;
}

const log: Exchange[] = [];
/** Every report a device posted: `device id` → times posted. */
const reportsSent = new Map<string, number>();
const realFetch = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const e: Exchange = { origin: url.origin, method: init?.method ?? 'GET', path: url.pathname, at: Date.now(), status: null, error: null };
  log.push(e);
  const m = /^\/v1\/devices\/([^/]+)\/reports$/.exec(url.pathname);
  if (m && typeof init?.body === 'string') {
    const key = `${m[1]} ${(JSON.parse(init.body) as { id: string }).id}`;
    reportsSent.set(key, (reportsSent.get(key) ?? 0) + 1);
  }
  try {
    const res = await realFetch(input, init);
    e.status = res.status;
    return res;
  } catch (err) {
    e.failedAt = Date.now();
    e.error = err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
    throw err;
  }
};

const results: { ok: boolean; what: string }[] = [];
function check(ok: boolean, what: string): void {
  results.push({ ok, what });
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}\n`);
}
const say = (s: string): void => void process.stdout.write(`scale: ${s}\n`);

/** A device fails the health check of the release when its id hashes so (about 4 %). */
const fate: Fate = (d) => (createHash('sha256').update(d.id).digest()[0]! % 25 === 0 ? { ok: false, reason: 'health:scale-test' } : { ok: true });

async function main(): Promise<number> {
  const t0 = Date.now();
  const base = execFileSync('bash', [join(cliPath('server'), '..', '..', '..', 'scripts', 'setup', 'postgres.sh')], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
  const schema = `scale_${randomBytes(6).toString('hex')}`;
  const url = schemaUrl(base, schema);
  const work = await mkdtemp(join(tmpdir(), 'otaab-scale-'));
  const db = new PgDatabase(url);
  const servers: ServerProcess[] = [];
  let stopLoad = false;
  try {
    say(`PostgreSQL schema ${schema}; work directory ${work}`);
    await execa('node', [cliPath('release'), 'keygen', '--out', join(work, 'release')]);
    const data = join(work, 'shared-data');
    const env = { OTA_SERVER_DATABASE_URL: url };
    const opts = { data, releaseKeys: [join(work, 'release.pub')], env, args: ['--poll-interval', '5'] };
    // The first instance initialises the shared directory (server key, bundles/) and migrates.
    servers.push(await ServerProcess.start(opts));
    servers.push(...(await Promise.all(Array.from({ length: INSTANCES - 1 }, () => ServerProcess.start(opts)))));
    const urls = servers.map((s) => s.url);
    say(`${INSTANCES} instances: ${urls.join(' ')}`);
    const ops = await createToken(data, 'ops', 'scale-ops', env);
    const enroll = await createToken(data, 'enroll', 'scale-factory', env);

    // An enrollment raced at every instance: one wins.
    const raced = await Promise.all(
      urls.map((u) =>
        fetch(`${u}/v1/devices/enroll`, {
          method: 'POST',
          headers: { authorization: `Bearer ${enroll}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id: 'raced-0', compatible: 'other-hw', product: 'other' }),
        }).then((r) => r.status),
      ),
    );
    check(raced.filter((s) => s === 201).length === 1 && raced.filter((s) => s === 409).length === INSTANCES - 1, `an enrollment raced at ${INSTANCES} instances: one 201, the rest 409 (got ${raced.join(', ')})`);

    // Devices, spread over the instances: device i talks to instance i mod 3.
    const per = Array.from({ length: INSTANCES }, (_, i) => Math.floor(DEVICES / INSTANCES) + (i < DEVICES % INSTANCES ? 1 : 0));
    const fleets = await Promise.all(
      urls.map((u, i) => SimFleet.enroll({ url: u, enrollToken: enroll, count: per[i]!, prefix: `i${i}`, compatible: COMPATIBLE, product: PRODUCT })),
    );
    const all = fleets.flatMap((f) => f.devices);
    const early = all.length;
    say(`${all.length} devices enrolled (${per.join(' + ')}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // The release, through instance 0; the staged rollout, through instance 1.
    await writeFile(join(work, 'rootfs.img'), randomBytes(256 * 1024));
    await execa('node', [cliPath('release'), 'build', '--key', join(work, 'release.key'), '--product', PRODUCT, '--version', VERSION, '--compatible', COMPATIBLE, '--image', `rootfs=${join(work, 'rootfs.img')}`, '-o', join(work, 'b.otab')]);
    await execa('node', [cliPath('release'), 'upload', join(work, 'b.otab'), '--server', urls[0]!, '--json'], { env: { OTA_TOKEN: ops } });
    const rollout = await api<{ id: string }>(urls[1]!, ops, 'POST', '/v1/rollouts', {
      product: PRODUCT,
      version: VERSION,
      phases: [{ percent: 5 }, { percent: 30 }, { percent: 100 }],
      successShare: 0.9,
      soakSeconds: 0,
      pauseFailures: null,
      pauseFailureShare: 0.5,
      seed: 7,
    });
    say(`release ${PRODUCT} ${VERSION} uploaded through instance 0; rollout ${rollout.id} started through instance 1`);

    // Late joiners: devices enrolled after the start join the rollout at their first check-in,
    // at all three instances at once, each under the rollout's own lock for its shuffle position.
    const late = await Promise.all(
      urls.map((u, i) => SimFleet.enroll({ url: u, enrollToken: enroll, count: LATE, prefix: `late${i}`, compatible: COMPATIBLE, product: PRODUCT })),
    );
    const lateDevices = late.flatMap((f) => f.devices);
    all.push(...lateDevices);
    say(`${lateDevices.length} more devices enrolled after the rollout started (${LATE} at each instance)`);

    // The load: every fleet checks in round after round; devices download (the bundle's bytes
    // are not fetched by these simulated devices) and report.
    const loops = [...fleets, ...late].map(async (f) => {
      while (!stopLoad) {
        const t = Date.now();
        await f.round(fate, 12);
        await sleep(Math.max(100, 1000 - (Date.now() - t)));
      }
    });

    // Kill instance 2 once the rollout is under way, and start it again.
    const victim = INSTANCES - 1;
    let killedAt = 0;
    let backAt = 0;
    const deadline = Date.now() + TIMEOUT_MS;
    let view: { state: string; phase: number; totals: Record<string, number> } = { state: '', phase: 0, totals: {} };
    let unseen = 0;
    while (Date.now() < deadline) {
      // The test's own look at the rollout: a connection lost under load is asked again next
      // second (the devices' requests are what the checks judge); five in a row end the run.
      try {
        view = (await api<{ rollout: typeof view }>(urls[0]!, ops, 'GET', `/v1/rollouts/${rollout.id}`)).rollout;
        unseen = 0;
      } catch (err) {
        if (++unseen >= 5) throw err;
        say(`reading the rollout from instance 0 failed (${errorMessage(err)}); asking again`);
        await sleep(1000);
        continue;
      }
      if (killedAt === 0 && (view.totals.success ?? 0) >= Math.max(20, DEVICES * 0.05)) {
        killedAt = Date.now();
        await servers[victim]!.stop('SIGKILL');
        say(`instance ${victim} killed with SIGKILL at ${view.totals.success} successes (phase ${view.phase})`);
        await sleep(2000);
        await servers[victim]!.restart();
        backAt = Date.now();
        say(`instance ${victim} restarted after ${((backAt - killedAt) / 1000).toFixed(1)} s on ${servers[victim]!.url}`);
      }
      const settled = all.every((d) => d.installed.length > 0 && d.tx === null && d.outbox.length === 0);
      if (killedAt > 0 && view.state === 'completed' && settled) break;
      await sleep(1000);
    }
    stopLoad = true;
    await Promise.all(loops);
    // Anything still unsent goes out now.
    await inLanes([...fleets, ...late].flatMap((f) => f.devices.map((d) => ({ f, d }))), 16, async ({ f, d }) => void (await f.flush(d)));
    view = (await api<{ rollout: typeof view }>(urls[0]!, ops, 'GET', `/v1/rollouts/${rollout.id}`)).rollout;
    say(`load ended after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${log.length} requests`);
    check(killedAt > 0 && backAt > 0, `instance ${victim} was killed mid-rollout and restarted`);

    // Rollbacks: requested through rotating instances; each device asks all three at once.
    const committed = all.filter((d) => d.version === VERSION);
    const rb = committed.filter((_, i) => i % Math.max(1, Math.floor(committed.length / 30)) === 0).slice(0, 30);
    for (const [i, d] of rb.entries()) await api(urls[i % INSTANCES]!, ops, 'POST', `/v1/devices/${d.id}/rollback`, { note: 'scale test' });
    const seen = new Map<string, number>();
    for (let round = 0; round < 3; round++) {
      await inLanes(rb, 8, async (d: SimDevice) => {
        const answers = await Promise.all(fleets.map((f) => f.checkIn(d)));
        for (const a of answers) if (a?.directive.type === 'rollback') seen.set(d.id, (seen.get(d.id) ?? 0) + 1);
      });
    }
    const delivered = db.prepare('SELECT count(*) FROM rollbacks WHERE delivered IS NOT NULL').pluck().get() as number;
    check(
      rb.length > 0 && rb.every((d) => seen.get(d.id) === 1) && delivered === rb.length,
      `${rb.length} rollbacks, each asked for at ${INSTANCES} instances at once over 3 rounds: each delivered exactly once (answers: ${[...new Set(rb.map((d) => seen.get(d.id) ?? 0))].join('/')} per device; ${delivered} marked delivered)`,
    );

    // 5xx and failed requests.
    const fives = log.filter((e) => e.status !== null && e.status >= 500);
    check(fives.length === 0, `no 5xx answer among ${log.length} requests (${fives.length}${fives.length ? `: ${fives.slice(0, 3).map((e) => `${e.status} ${e.method} ${e.path}`).join('; ')}` : ''})`);
    const failed = log.filter((e) => e.error !== null);
    const victimOrigin = new URL(servers[victim]!.url).origin;
    // A failed request's life must overlap the instance's down time (give or take a second).
    const stray = failed.filter((e) => e.origin !== victimOrigin || (e.failedAt ?? e.at) < killedAt - 1000 || e.at > backAt + 1000);
    check(stray.length === 0, `${failed.length} failed requests, all to instance ${victim} while it was down (${stray.length} elsewhere${stray.length ? `: ${stray.slice(0, 3).map((e) => `${e.origin}${e.path} ${e.error}`).join('; ')}` : ''})`);

    // Reports: every one the devices sent is stored, once.
    const stored = db.prepare('SELECT device, id FROM reports').all() as { device: string; id: string }[];
    const storedKeys = new Set(stored.map((r) => `${r.device} ${r.id}`));
    const lost = [...reportsSent.keys()].filter((k) => !storedKeys.has(k) && !k.startsWith('raced-'));
    const resent = [...reportsSent.values()].filter((n) => n > 1).length;
    check(lost.length === 0, `every report sent is stored: ${reportsSent.size} distinct reports, ${lost.length} missing (${resent} were sent more than once)`);
    check(stored.length === storedKeys.size && stored.length === reportsSent.size, `no report stored twice: ${stored.length} rows for ${storedKeys.size} distinct (device, id)`);

    // The rollout's counts against what the devices did.
    const failedDevices = all.filter((d) => d.installed.includes(VERSION) && d.version !== VERSION);
    const okDevices = all.filter((d) => d.version === VERSION);
    const t = view.totals;
    check(view.state === 'completed' && view.phase === 2, `rollout completed through its 3 phases (state ${view.state}, phase ${view.phase})`);
    check(
      t.members === all.length && t.success === okDevices.length && t.failure === failedDevices.length && (t.waiting ?? 0) + (t.offered ?? 0) + (t.installing ?? 0) === 0,
      `rollout counts exact: ${t.members} members / ${all.length} devices, ${t.success} success / ${okDevices.length} committed, ${t.failure} failure / ${failedDevices.length} failed health checks`,
    );
    const members = db.prepare('SELECT device, status FROM rollout_devices WHERE rollout = ?').all(rollout.id) as { device: string; status: string }[];
    const byDevice = new Map(members.map((m) => [m.device, m.status]));
    const wrong = all.filter((d) => byDevice.get(d.id) !== (d.version === VERSION ? 'success' : 'failure'));
    check(wrong.length === 0, `each member's status equals its device's outcome (${wrong.length} differ)`);
    const lateMembers = lateDevices.filter((d) => byDevice.has(d.id)).length;
    check(lateMembers === lateDevices.length, `${lateDevices.length} devices enrolled after the start (of ${early + lateDevices.length}) joined the rollout at their first check-in (${lateMembers} members)`);
    const dupPositions = db.prepare('SELECT count(*) - count(DISTINCT position) FROM rollout_devices WHERE rollout = ?').pluck().get(rollout.id) as number;
    check(dupPositions === 0, `no two members share a shuffle position (${dupPositions})`);
    const offeredTwice = all.filter((d) => d.offered.filter((v) => v === VERSION).length !== 1).length;
    check(offeredTwice === 0, `each device was offered the release exactly once (${offeredTwice} otherwise)`);
    say(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    // What the instances were doing when the run failed, before they are stopped.
    for (const [i, s] of servers.entries()) process.stderr.write(`test:scale: instance ${i} ${s.describe()}\n`);
    throw err;
  } finally {
    stopLoad = true;
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    try {
      db.exec(`DROP SCHEMA ${schema} CASCADE`);
    } catch {
      // Left for the next `postgres.sh --fresh`.
    }
    db.close();
    await rm(work, { recursive: true, force: true });
  }
  const bad = results.filter((r) => !r.ok);
  process.stdout.write(`test:scale: ${results.length - bad.length}/${results.length} checks passed\n`);
  return bad.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`test:scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
