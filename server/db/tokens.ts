/** Token rows: create, look up by presented token, list, revoke. */
import { OtaError } from '../../shared/errors.js';
import { hashToken, newId, newToken, type Role } from '../tokens.js';
import type { Db } from './open.js';

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
  private readonly insertStmt;
  private readonly byHashStmt;
  private readonly listStmt;
  private readonly revokeStmt;
  private readonly revokeDeviceStmt;

  constructor(db: Db) {
    this.insertStmt = db.prepare('INSERT INTO tokens (id, hash, role, name, device, created) VALUES (?, ?, ?, ?, ?, ?)');
    this.byHashStmt = db.prepare('SELECT id, role, device FROM tokens WHERE hash = ? AND revoked IS NULL');
    this.listStmt = db.prepare('SELECT id, role, name, device, created, revoked FROM tokens ORDER BY created, id');
    this.revokeStmt = db.prepare('UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL');
    this.revokeDeviceStmt = db.prepare("UPDATE tokens SET revoked = ? WHERE device = ? AND role = 'device' AND revoked IS NULL");
  }

  /** Creates a token and returns it; only its hash is stored. */
  create(role: Role, name: string, device: string | null = null, now = new Date()): CreatedToken {
    const token = newToken();
    const id = newId('tok');
    this.insertStmt.run(id, hashToken(token), role, name, device, now.toISOString());
    return { id, token };
  }

  /** The identity behind a presented token, or undefined when it is unknown or revoked. */
  identify(token: string): TokenIdentity | undefined {
    return this.byHashStmt.get(hashToken(token)) as TokenIdentity | undefined;
  }

  /** Every token, revoked ones included. */
  list(): TokenRow[] {
    return this.listStmt.all() as TokenRow[];
  }

  /** Revokes a token by id; revoking a revoked token is a no-op, an unknown id an error. */
  revoke(id: string, now = new Date()): void {
    if (this.revokeStmt.run(now.toISOString(), id).changes === 0 && !this.list().some((t) => t.id === id)) {
      throw new OtaError('TOKEN_NOT_FOUND', `token ${id}: no such token`);
    }
  }

  /** Revokes every token of a device (before it is enrolled anew). */
  revokeDevice(device: string, now = new Date()): void {
    this.revokeDeviceStmt.run(now.toISOString(), device);
  }
}
