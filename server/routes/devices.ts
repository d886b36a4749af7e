/** Fleet routes: enrollment, the fleet and one device's history, technician rollback requests. */
import type { FastifyPluginAsync } from 'fastify';
import { OtaError } from '../../shared/errors.js';
import { transactionsOf } from '../db/reports.js';
import { deviceSchema, enrollSchema, listDevicesSchema, rollbackSchema } from '../schemas/devices.js';

/** Channel of a device enrolled without one. */
export const DEFAULT_CHANNEL = 'stable';

interface EnrollBody {
  id: string;
  compatible: string;
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
      store.devices.enroll(id, compatible, channel, replace);
      store.tokens.revokeDevice(id);
      return store.tokens.create('device', id, id);
    });
    req.log.info({ device: id, compatible, channel, replace, by: req.identity?.id }, 'device enrolled');
    return reply.code(201).send({ id, token: token.token, serverKey: app.signer.publicKey, channel, compatible });
  });

  app.get('/devices', { schema: listDevicesSchema, config: { roles: ['ops', 'technician'] } }, async () => ({ devices: app.store.devices.list() }));

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
