/**
 * API tokens: 32 random bytes shown once, stored only as their sha256. A stolen database then
 * holds nothing that authenticates, and a lookup is one hash and one indexed read.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Roles a token can carry (DESIGN §8). */
export type Role = 'ops' | 'technician' | 'enroll' | 'device';

/** Roles an admin can create with `ota-server token create`; device tokens come from enrollment. */
export const ADMIN_ROLES: readonly Role[] = ['ops', 'technician', 'enroll'];

/** A new random token; the prefix makes a leaked one easy to recognise in logs and scanners. */
export function newToken(): string {
  return `otaab_${randomBytes(32).toString('base64url')}`;
}

/** The stored form of a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A short random id naming a token (or any record) in lists and commands. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}
