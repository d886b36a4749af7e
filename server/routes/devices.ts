/** Fleet routes: enrollment, the fleet and one device's history, technician rollback requests. */
import type { FastifyPluginAsync } from 'fastify';
import { OtaError } from '../../shared/errors.js';
import { transactionsOf } from '../db/reports.js';
import '../errors.js';
import type { DeviceFilter } from '../db/devices.js';
import { bulkTagSchema, deviceSchema, enrollSchema, listDevicesSchema, rollbackSchema, tagSchema } from '../schemas/devices.js';

/** The fleet list's query: `tag=a,b` (all of them), `attr=site=lyon,hardware=rev-c`. */
interface DeviceQuery {
  product?: string;
  channel?: string;
  tag?: string;
  attr?: string;
  version?: string;
  compatible?: string;
}

/** The filter a fleet-list query asks for. */
export function deviceFilter(q: DeviceQuery): DeviceFilter {
  const f: DeviceFilter = {};
  if (q.product !== undefined) f.product = q.product;
  if (q.channel !== undefined) f.channel = q.channel;
  if (q.version !== undefined) f.version = q.version;
  if (q.compatible !== undefined) f.compatible = q.compatible;
  if (q.tag !== undefined) f.tags = q.tag.split(',').filter((t) => t !== '');
  if (q.attr !== undefined) {
    const attrs: Record<string, string> = {};
    for (const pair of q.attr.split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new OtaError('REQUEST_INVALID', `query "attr": "${pair}" is not NAME=VALUE`);
      attrs[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    f.attributes = attrs;
  }
  return f;
}

/** Channel of a device enrolled without one. */
export const DEFAULT_CHANNEL = 'stable';

interface EnrollBody {
  id: string;
  compatible: string;
  product?: string;
  channel?: string;
  replace?: boolean;
}

/** The fleet routes. */
export const deviceRoutes: FastifyPluginAsync = async (app) => {
  app.post<{ Body: EnrollBody }>('/devices/enroll', { schema: enrollSchema, config: { roles: ['enroll', 'ops'] } }, async (req, reply) => {
    const { id, compatible, replace = false } = req.body;
    const channel = req.body.channel ?? DEFAULT_CHANNEL;
    // Only ops may take over an enrolled id: an enrollment token in a factory image must not
    // let anyone who extracts it impersonate a device that is already in the field.
    if (replace && req.identity?.role !== 'ops') {
      throw new OtaError('AUTH_FORBIDDEN', `device ${id}: only an ops token may re-enroll a device ("replace": true)`);
    }
    const { store } = app;
    const token = store.transaction(() => {
      store.devices.enroll(id, compatible, channel, replace, new Date(), req.body.product ?? null);
      store.tokens.revokeDevice(id);
      return store.tokens.create('device', id, id);
    });
    req.log.info({ device: id, compatible, channel, replace, by: req.identity?.id }, 'device enrolled');
    return reply.code(201).send({ id, token: token.token, serverKey: app.signer.publicKey, channel, compatible });
  });

  app.get<{ Querystring: DeviceQuery }>('/devices', { schema: listDevicesSchema, config: { roles: ['ops', 'technician'] } }, async (req) => ({
    devices: app.store.devices.list(deviceFilter(req.query)),
  }));

  app.put<{ Params: { id: string; tag: string } }>('/devices/:id/tags/:tag', { schema: tagSchema('Put a tag on a device'), config: { roles: ['ops'] } }, async (req) => {
    const { id, tag } = req.params;
    app.store.transaction(() => app.store.devices.tag(id, [tag], []));
    return { id, tags: app.store.devices.get(id)!.tags };
  });

  app.delete<{ Params: { id: string; tag: string } }>('/devices/:id/tags/:tag', { schema: tagSchema('Remove a tag from a device'), config: { roles: ['ops'] } }, async (req) => {
    const { id, tag } = req.params;
    app.store.transaction(() => app.store.devices.tag(id, [], [tag]));
    return { id, tags: app.store.devices.get(id)!.tags };
  });

  app.post<{ Body: { devices: string[]; add?: string[]; remove?: string[] } }>('/devices/tags', { schema: bulkTagSchema, config: { roles: ['ops'] } }, async (req) => {
    const { devices, add = [], remove = [] } = req.body;
    // All or nothing: one unknown id leaves every device as it was.
    app.store.transaction(() => {
      for (const id of devices) app.store.devices.tag(id, add, remove);
    });
    return { devices: devices.map((id) => ({ id, tags: app.store.devices.get(id)!.tags })) };
  });

  app.get<{ Params: { id: string } }>('/devices/:id', { schema: deviceSchema, config: { roles: ['ops', 'technician'] } }, async (req) => {
    const { store } = app;
    const device = store.devices.get(req.params.id);
    if (!device) throw new OtaError('DEVICE_NOT_FOUND', `device ${req.params.id}: not enrolled`);
    const reports = store.reports.list(device.id);
    return { device, transactions: transactionsOf(reports), reports, rollbacks: store.rollbacks.list(device.id) };
  });

  app.post<{ Params: { id: string }; Body: { note?: string } }>(
    '/devices/:id/rollback',
    { schema: rollbackSchema, config: { roles: ['ops', 'technician'] } },
    async (req, reply) => {
      const { store } = app;
      const id = req.params.id;
      const row = store.transaction(() => {
        if (!store.devices.exists(id)) throw new OtaError('DEVICE_NOT_FOUND', `device ${id}: not enrolled`);
        return store.rollbacks.request(id, req.identity?.id ?? 'unknown', req.body.note ?? null);
      });
      req.log.info({ device: id, rollback: row.id, by: row.requestedBy }, 'rollback requested');
      return reply.code(202).send(row);
    },
  );
};
