/**
 * The store seam: handlers see only these interfaces. Today Deno KV implements them; a remote
 * store can replace it without touching the handlers.
 */

import type { PasswordHash } from "../crypto/password.ts";

export interface UserRecord {
  /** The name as registered (display form); its lowercase is the identity. */
  name: string;
  password: PasswordHash;
  created: Date;
}

export interface UserStore {
  /** Adds a user; false when the name is taken, whatever its case. */
  create(record: UserRecord): Promise<boolean>;
  /** Looks a user up by name, whatever its case. */
  get(name: string): Promise<UserRecord | null>;
  /** Replaces a user's password hash; false when the user does not exist. */
  setPassword(name: string, password: PasswordHash): Promise<boolean>;
}

export interface TokenRecord {
  /** The user's identity (lowercase name). */
  user: string;
  created: Date;
  expires: Date;
}

export interface IssuedToken {
  /** The secret the client keeps; the store keeps only its SHA-256. */
  token: Uint8Array;
  expires: Date;
}

export interface TokenStore {
  /** Issues a resume token, dropping the user's oldest ones beyond `maxPerUser`. */
  issue(user: string, ttlMs: number, maxPerUser: number): Promise<IssuedToken>;
  /** The token's record, or null when it is unknown, revoked or expired. */
  check(token: Uint8Array): Promise<TokenRecord | null>;
  revoke(token: Uint8Array): Promise<void>;
  revokeAll(user: string): Promise<void>;
}

export interface Store {
  users: UserStore;
  tokens: TokenStore;
  close(): void;
}
