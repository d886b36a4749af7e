/** Token rows: create, look up by presented token, list, revoke. */
import { OtaError } from '../../shared/errors.js';
import { hashToken, newId, newToken, type Role } from '../tokens.js';
import type { Db } from './open.js';
import { prepareAll } from './statements.js';

/** Who a valid token belongs to. */
export interface TokenIdentity {
  id: string;
  role: Role;
  /** The device a `device` token is bound to. */
  device: string | null;
}

/** A token as `token list` shows it (never the token itself). */
export interface TokenRow extends TokenIdentity {
  name: string;
  created: string;
  revoked: string | null;
}

/** A just-created token: the only time the secret exists outside the caller. */
export interface CreatedToken {
  id: string;
  token: string;
}

/** Prepared statements over the tokens table. */
export class TokenQueries {
  private readonly q;

  constructor(db: Db) {
    this.q = prepareAll(db, {
      insert: 'INSERT INTO tokens (id, hash, role, name, device, created) VALUES (?, ?, ?, ?, ?, ?)',
      byHash: 'SELECT id, role, device FROM tokens WHERE hash = ? AND revoked IS NULL',
      list: 'SELECT id, role, name, device, created, revoked FROM tokens ORDER BY created, id',
      revoke: 'UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL',
      revokeDevice: "UPDATE tokens SET revoked = ? WHERE device = ? AND role = 'device' AND revoked IS NULL",
    });
  }

  /** Creates a token and returns it; only its hash is stored. */
  create(role: Role, name: string, device: string | null = null, now = new Date()): CreatedToken {
    const token = newToken();
    const id = newId('tok');
    this.q.insert.run(id, hashToken(token), role, name, device, now.toISOString());
    return { id, token };
  }

  /** The identity behind a presented token, or undefined when it is unknown or revoked. */
  identify(token: string): TokenIdentity | undefined {
    return this.q.byHash.get(hashToken(token)) as TokenIdentity | undefined;
  }

  /** Every token, revoked ones included. */
  list(): TokenRow[] {
    return this.q.list.all() as TokenRow[];
  }

  /** Revokes a token by id; revoking a revoked token is a no-op, an unknown id an error. */
  revoke(id: string, now = new Date()): void {
    if (this.q.revoke.run(now.toISOString(), id).changes === 0 && !this.list().some((t) => t.id === id)) {
      throw new OtaError('TOKEN_NOT_FOUND', `token ${id}: no such token`);
    }
  }

  /** Revokes every token of a device (before it is enrolled anew). */
  revokeDevice(device: string, now = new Date()): void {
    this.q.revokeDevice.run(now.toISOString(), device);
  }
}
