/**
 * Rollouts (create, list, show, pause, resume, abort) and maintenance windows. The policy is
 * server/rollout/policy.ts; these routes validate, start and control.
 */
import type { FastifyPluginAsync } from 'fastify';
import { OtaError } from '../../shared/errors.js';
import { windowProblem, type Day } from '../../shared/windows.js';
import '../errors.js';
import { DEFAULT_PHASES, phasesProblem, type Phase } from '../rollout/policy.js';
import { startRollout } from '../rollout/start.js';
import {
  controlRolloutSchema,
  createRolloutSchema,
  deleteWindowSchema,
  listRolloutsSchema,
  listWindowsSchema,
  putWindowSchema,
  showRolloutSchema,
} from '../schemas/rollouts.js';

interface CreateBody {
  product: string;
  version: string;
  channel?: string;
  tags?: string[];
  attributes?: Record<string, string>;
  phases?: Phase[];
  successShare?: number;
  soakSeconds?: number;
  pauseFailures?: number | null;
  pauseFailureShare?: number | null;
  seed?: number;
}

/** Defaults of a staged rollout (docs/SERVER.md "Rollouts"). */
export const ROLLOUT_DEFAULTS = Object.freeze({ successShare: 0.9, soakSeconds: 0, pauseFailures: null, pauseFailureShare: 0.1 });

/** The rollout and window routes. */
export const rolloutRoutes: FastifyPluginAsync = async (app) => {
  app.post<{ Body: CreateBody }>('/rollouts', { schema: createRolloutSchema, config: { roles: ['ops'] } }, async (req, reply) => {
    const b = req.body;
    const phases = b.phases ?? [...DEFAULT_PHASES];
    const problem = phasesProblem(phases);
    if (problem) throw new OtaError('ROLLOUT_INVALID', `rollout of ${b.product} ${b.version}: ${problem}`);
    const now = new Date();
    const view = app.store.transaction(() =>
      startRollout(
        app.store,
        {
          product: b.product,
          version: b.version,
          kind: 'staged',
          target: { channel: b.channel ?? null, tags: [...new Set(b.tags ?? [])].sort(), attributes: b.attributes ?? {} },
          phases,
          successShare: b.successShare ?? ROLLOUT_DEFAULTS.successShare,
          soakSeconds: b.soakSeconds ?? ROLLOUT_DEFAULTS.soakSeconds,
          pauseFailures: b.pauseFailures === undefined ? ROLLOUT_DEFAULTS.pauseFailures : b.pauseFailures,
          pauseFailureShare: b.pauseFailureShare === undefined ? ROLLOUT_DEFAULTS.pauseFailureShare : b.pauseFailureShare,
          createdBy: req.identity?.id ?? 'unknown',
          ...(b.seed !== undefined ? { seed: b.seed } : {}),
        },
        now,
      ),
    );
    req.log.info({ rollout: view.id, product: view.product, version: view.version, devices: view.totals.members }, 'rollout started');
    return reply.code(201).send(view);
  });

  app.get<{ Querystring: { product?: string } }>('/rollouts', { schema: listRolloutsSchema, config: { roles: ['ops', 'technician'] } }, async (req) => ({
    rollouts: app.store.rollouts.list(req.query.product ?? null),
  }));

  app.get<{ Params: { id: string } }>('/rollouts/:id', { schema: showRolloutSchema, config: { roles: ['ops', 'technician'] } }, async (req) => {
    const { rollouts } = app.store;
    const rollout = rollouts.get(req.params.id);
    return { rollout, failures: rollouts.failureReasons(rollout.id), devices: rollouts.members(rollout.id) };
  });

  for (const [action, summary] of [
    ['pause', 'Pause a rollout: no device is offered its release until it resumes'],
    ['resume', 'Resume a paused rollout; failures so far are acknowledged, the thresholds count new ones'],
    ['abort', 'Abort a rollout for good: its release is offered to no one through it'],
  ] as const) {
    app.post<{ Params: { id: string } }>(`/rollouts/:id/${action}`, { schema: controlRolloutSchema(summary), config: { roles: ['ops'] } }, async (req) => {
      const by = req.identity?.id ?? 'unknown';
      const view = app.store.transaction(() => app.store.rollouts.control(req.params.id, action, by));
      req.log.info({ rollout: view.id, action, by }, `rollout ${action}`);
      return view;
    });
  }

  app.put<{ Params: { name: string }; Body: { tag: string; days: Day[]; start: string; durationMinutes: number; timeZone: string } }>(
    '/windows/:name',
    { schema: putWindowSchema, config: { roles: ['ops'] } },
    async (req) => {
      const { tag, ...w } = req.body;
      const problem = windowProblem(w);
      if (problem) throw new OtaError('WINDOW_INVALID', `maintenance window ${req.params.name}: ${problem}`);
      return app.store.transaction(() => app.store.windows.put(req.params.name, tag, w));
    },
  );

  app.get('/windows', { schema: listWindowsSchema, config: { roles: ['ops', 'technician'] } }, async () => ({ windows: app.store.windows.list() }));

  app.delete<{ Params: { name: string } }>('/windows/:name', { schema: deleteWindowSchema, config: { roles: ['ops'] } }, async (req) => {
    app.store.transaction(() => app.store.windows.remove(req.params.name));
    return { name: req.params.name, deleted: true };
  });
};
