/** `ota-release rollout create|list|show|pause|resume|abort` and `ota-release window set|list|delete`. */
import { defineCommand, list, printJson, required, UsageError } from '../../shared/cli.js';
import { clientFromEnv, type OpsClient } from '../client.js';
import type { MemberView, RolloutView } from '../../server/db/rollouts.js';
import type { WindowView } from '../../server/db/windows.js';
import { SHOW_OPTIONS, attrOption, numberOption, phaseLines, phasesOption, table } from './fleet-format.js';

const common = { server: { type: 'string', short: 's' }, json: { type: 'boolean' } } as const;

function summary(r: RolloutView): string {
  const t = r.target;
  const target = [t.channel ? `channel ${t.channel}` : null, t.tags.length ? `tags ${t.tags.join(',')}` : null, ...Object.entries(t.attributes).map(([k, v]) => `${k}=${v}`)]
    .filter(Boolean)
    .join(' ');
  return (
    `rollout ${r.id}: ${r.product} ${r.version} (${r.kind}) ${r.state}${r.reason ? ` — ${r.reason}` : ''}\n` +
    `target ${target || `every ${r.product} device`}; ${r.totals.members} device(s): ${r.totals.success} ok, ${r.totals.failure} failed\n` +
    phaseLines(r)
  );
}

async function create(client: OpsClient, values: Record<string, unknown>): Promise<RolloutView> {
  const body: Record<string, unknown> = { product: required(values, 'product'), version: required(values, 'version') };
  if (typeof values.channel === 'string') body.channel = values.channel;
  if (list(values.tag).length) body.tags = list(values.tag);
  const attrs = attrOption(values);
  if (Object.keys(attrs).length) body.attributes = attrs;
  const phases = phasesOption(values.phases);
  if (phases) body.phases = phases;
  const share = numberOption(values, 'success-share', 0.01, 1);
  if (share !== undefined) body.successShare = share;
  const soak = numberOption(values, 'soak', 0, 30 * 86400);
  if (soak !== undefined) body.soakSeconds = Math.round(soak);
  const pf = numberOption(values, 'pause-failures', 1, 1e9);
  if (pf !== undefined) body.pauseFailures = Math.round(pf);
  const ps = numberOption(values, 'pause-share', 0.001, 1);
  if (ps !== undefined) body.pauseFailureShare = ps;
  if (values['no-pause-share']) body.pauseFailureShare = null;
  const seed = numberOption(values, 'seed', 0, 2 ** 31 - 1);
  if (seed !== undefined) body.seed = Math.round(seed);
  return client.request<RolloutView>('POST', 'v1/rollouts', body);
}

/** The rollout command. */
export const rolloutCommand = defineCommand({
  name: 'rollout',
  summary: 'Staged rollouts: create, list, show, pause, resume, abort',
  usage: 'ota-release rollout create --product P --version V [target] [phases] | list | show ID | pause ID | resume ID | abort ID',
  help: `A rollout offers a release to a target, phase by phase. Phase membership is random (a seeded
shuffle) and fixed at the start; devices that join the target later join the last open phase.
A phase opens when the open phases' success share is reached (and the soak time passed); the
rollout pauses by itself when failures reach --pause-failures or --pause-share.

  create     --product P --version V (required)
             --channel C            only devices following channel C
             --tag T                only devices carrying tag T (repeatable, all required)
             --attr NAME=VALUE      only devices reporting this attribute (repeatable)
             --phases LIST          e.g. 1%,10%,50%,100% (the default) or 5,50,100%
             --success-share F      share of open-phase devices that must succeed (default 0.9)
             --soak SECONDS         least time a phase stays open (default 0)
             --pause-failures N     pause at N failures (default: none)
             --pause-share F        pause when this share failed (default 0.1)
             --no-pause-share       no share threshold
             --seed N               fix the shuffle (default: random)
  list       [--product P]
  show ID    counts per phase, the failures' reasons, every device's status
  pause ID | resume ID | abort ID
             resume acknowledges the failures so far: the thresholds count new ones

Options:
  --server URL    server base URL (default: OTA_SERVER)
  --json          print the server's answer as JSON

Example:
  ota-release rollout create --product charger --version 1.4.0 --tag site-lyon --phases 5,25%,100%`,
  options: {
    ...common,
    product: { type: 'string' },
    version: { type: 'string' },
    channel: { type: 'string' },
    tag: { type: 'string', multiple: true },
    attr: { type: 'string', multiple: true },
    phases: { type: 'string' },
    'success-share': { type: 'string' },
    soak: { type: 'string' },
    'pause-failures': { type: 'string' },
    'pause-share': { type: 'string' },
    'no-pause-share': { type: 'boolean' },
    seed: { type: 'string' },
  },
  positionals: [1, 2],
  async run({ values, positionals }) {
    const [action, id] = positionals as [string, string | undefined];
    const needsId = ['show', 'pause', 'resume', 'abort'].includes(action);
    if (!['create', 'list', ...(needsId ? [action] : [])].includes(action)) throw new UsageError(`unknown rollout action "${action}": use create, list, show, pause, resume or abort`);
    if (needsId !== (id !== undefined)) throw new UsageError(needsId ? `rollout ${action} needs the rollout id` : `rollout ${action} takes no id`);
    const client = clientFromEnv(values);
    if (action === 'create') {
      const r = await create(client, values);
      if (values.json) return printJson(r);
      return void process.stdout.write(summary(r));
    }
    if (action === 'list') {
      const q = typeof values.product === 'string' ? `?product=${encodeURIComponent(values.product)}` : '';
      const r = await client.request<{ rollouts: RolloutView[] }>('GET', `v1/rollouts${q}`);
      if (values.json) return printJson(r);
      return void process.stdout.write(
        table([
          ['ID', 'PRODUCT', 'VERSION', 'KIND', 'STATE', 'PHASE', 'OK', 'FAILED', 'DEVICES'],
          ...r.rollouts.map((x) => [x.id, x.product, x.version, x.kind, x.state, `${x.phase + 1}/${x.phases.length}`, String(x.totals.success), String(x.totals.failure), String(x.totals.members)]),
        ]),
      );
    }
    if (action === 'show') {
      const r = await client.request<{ rollout: RolloutView; failures: { reason: string; devices: number }[]; devices: MemberView[] }>('GET', `v1/rollouts/${encodeURIComponent(id!)}`);
      if (values.json) return printJson(r);
      process.stdout.write(summary(r.rollout));
      for (const f of r.failures) process.stdout.write(`failure ${f.reason}: ${f.devices} device(s)\n`);
      return;
    }
    const r = await client.request<RolloutView>('POST', `v1/rollouts/${encodeURIComponent(id!)}/${action}`, {});
    if (values.json) return printJson(r);
    process.stdout.write(summary(r));
  },
});

/** The window command. */
export const windowCommand = defineCommand({
  name: 'window',
  summary: 'Maintenance windows per group: set, list, delete',
  usage: 'ota-release window set NAME --tag T --days mon,tue --start HH:MM --duration MINUTES --tz ZONE | list | delete NAME',
  help: `Devices carrying the tag install, reboot and commit server updates only inside one of their
windows (they may download any time). Each device decides with its own clock: the windows
travel in the signed check-in answer.

  set NAME   --tag T             the group (devices carrying tag T)
             --days LIST         e.g. mon,tue,wed,thu,fri or sat,sun
             --start HH:MM       local start time in the zone
             --duration MINUTES  1 to 1440
             --tz ZONE           an IANA time zone, e.g. Europe/Paris
  list
  delete NAME

${SHOW_OPTIONS}`,
  options: { ...common, tag: { type: 'string' }, days: { type: 'string' }, start: { type: 'string' }, duration: { type: 'string' }, tz: { type: 'string' } },
  positionals: [1, 2],
  async run({ values, positionals }) {
    const [action, name] = positionals as [string, string | undefined];
    const client = clientFromEnv(values);
    if (action === 'list') {
      if (name !== undefined) throw new UsageError('window list takes no name');
      const r = await client.request<{ windows: WindowView[] }>('GET', 'v1/windows');
      if (values.json) return printJson(r);
      return void process.stdout.write(table([['NAME', 'TAG', 'DAYS', 'START', 'MINUTES', 'ZONE'], ...r.windows.map((w) => [w.name, w.tag, w.days.join(','), w.start, String(w.durationMinutes), w.timeZone])]));
    }
    if (name === undefined) throw new UsageError(`window ${action} needs a window name`);
    if (action === 'delete') {
      const r = await client.request<{ name: string }>('DELETE', `v1/windows/${encodeURIComponent(name)}`);
      if (values.json) return printJson(r);
      return void process.stdout.write(`deleted window ${r.name}\n`);
    }
    if (action !== 'set') throw new UsageError(`unknown window action "${action}": use set, list or delete`);
    const duration = numberOption(values, 'duration', 1, 1440);
    if (duration === undefined) throw new UsageError('option --duration is required');
    const body = {
      tag: required(values, 'tag'),
      days: required(values, 'days').split(',').map((d) => d.trim().toLowerCase()),
      start: required(values, 'start'),
      durationMinutes: Math.round(duration),
      timeZone: required(values, 'tz'),
    };
    const r = await client.request<WindowView>('PUT', `v1/windows/${encodeURIComponent(name)}`, body);
    if (values.json) return printJson(r);
    process.stdout.write(`window ${r.name}: devices tagged ${r.tag}, ${r.days.join(',')} from ${r.start} for ${r.durationMinutes} min (${r.timeZone})\n`);
  },
});
