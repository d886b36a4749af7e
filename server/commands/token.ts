/** `ota-server token create|list|revoke`: API tokens, straight in the data directory's database. */
import { UsageError, defineCommand, printJson } from '../../shared/cli.js';
import { loadConfig } from '../config.js';
import { Store } from '../db/store.js';
import { requireInitialised } from '../data-dir.js';
import { ADMIN_ROLES, type Role } from '../tokens.js';
import { dataHelp, dataOptions } from './options.js';

async function openStore(values: Record<string, unknown>): Promise<Store> {
  const config = await loadConfig({ data: values.data, config: values.config });
  await requireInitialised(config.data);
  return Store.open(config.data, config.databaseUrl);
}

/** The token command. */
export const tokenCommand = defineCommand({
  name: 'token',
  summary: 'Create, list or revoke API tokens',
  usage: 'ota-server token create --role ops|technician|enroll [--name N] | list | revoke ID  [--data DIR] [--json]',
  help: `create  prints a new token once on stdout (only its sha256 is stored); the id and role go to stderr
list    shows every token's id, role, name, device, creation and revocation (never the token)
revoke  revokes a token by id; requests with it are refused at once, even by a running server

Device tokens are made by enrollment (POST /v1/devices/enroll), one per device.

Options:
  --role ROLE      ops (upload, publish, fleet, rollback), technician (releases, fleet, rollback),
                   enroll (enroll devices only)
  --name NAME      who or what holds it, for the list (default: the role)
${dataHelp}
  --json           machine-readable output

Examples:
  OTA_TOKEN=$(ota-server token create --role ops --name gitlab-ci)
  ota-server token revoke tok_3f9a1c2b7d4e5f60`,
  options: { ...dataOptions, role: { type: 'string', short: 'r' }, name: { type: 'string', short: 'n' }, json: { type: 'boolean' } },
  positionals: [1, 2],
  async run({ values, positionals }) {
    const [action, id] = positionals;
    if (action !== 'create' && action !== 'list' && action !== 'revoke') {
      throw new UsageError(`unknown action "${action ?? ''}"; use create, list or revoke`);
    }
    if (action === 'revoke' && id === undefined) throw new UsageError('revoke needs the token id; `ota-server token list` shows them');
    if (action !== 'revoke' && id !== undefined) throw new UsageError(`${action} takes no argument, got "${id}"`);
    const role = values.role as string | undefined;
    if (action === 'create' && !ADMIN_ROLES.includes(role as Role)) {
      throw new UsageError(`--role must be one of ${ADMIN_ROLES.join(', ')}${role === 'device' ? ' (device tokens come from enrollment)' : ''}`);
    }
    const store = await openStore(values);
    try {
      if (action === 'create') {
        const name = typeof values.name === 'string' && values.name !== '' ? values.name : role!;
        const t = store.tokens.create(role as Role, name);
        if (values.json) printJson({ id: t.id, role, name, token: t.token });
        else {
          process.stdout.write(`${t.token}\n`);
          process.stderr.write(`token ${t.id} (role ${role}, name ${name}); it is shown only this once\n`);
        }
      } else if (action === 'list') {
        const rows = store.tokens.list();
        if (values.json) printJson(rows);
        else {
          for (const t of rows) {
            const status = t.revoked ? `revoked ${t.revoked}` : 'active';
            process.stdout.write(`${t.id}  ${t.role.padEnd(10)} ${t.name.padEnd(20)} created ${t.created}  ${status}\n`);
          }
        }
      } else {
        store.tokens.revoke(id!);
        process.stdout.write(`revoked ${id}\n`);
      }
    } finally {
      store.close();
    }
  },
});
