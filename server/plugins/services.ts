/** Decorates the app with the config and the services every route group uses. */
import type { Keyring } from '../../shared/signing.js';
import type { ServerConfig } from '../config.js';
import type { Store } from '../db/store.js';
import { unencapsulated } from '../plugin.js';
import type { Services } from '../services.js';
import type { AnswerSigner } from '../signer.js';
import type { BundleStorage } from '../storage/bundle-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated, frozen configuration. */
    config: ServerConfig;
    store: Store;
    bundles: BundleStorage;
    signer: AnswerSigner;
    /** Release keys trusted for uploads. */
    keyring: Keyring;
  }
}

/** Options: the config and the opened services. */
export interface ServicesOptions extends Record<string, unknown> {
  config: ServerConfig;
  services: Services;
}

/** The services plugin; closes the database when the app closes. */
export const servicesPlugin = unencapsulated<ServicesOptions>('otaab-services', async (app, { config, services }) => {
  app.decorate('config', config);
  app.decorate('store', services.store);
  app.decorate('bundles', services.bundles);
  app.decorate('signer', services.signer);
  app.decorate('keyring', services.keyring);
  app.addHook('onClose', async () => {
    services.store.close();
    services.bundles.close();
  });
});
