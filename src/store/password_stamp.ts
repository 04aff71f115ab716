/**
 * A user record's password stamp (UserRecord.passwordStamp): random, so that it tells nothing
 * about the password or its hash (a stamp derived from a weak hash would let a backup's reader
 * test guesses at that weak cost after the rehash).
 */

import { randomBytes } from "../crypto/keys.ts";
import type { PasswordHash } from "../crypto/password.ts";
import type { UserRecord } from "./types.ts";

/** A stamp for a new password (setPassword) or a new account (create). */
export function newPasswordStamp(): string {
  return randomBytes(16).toHex();
}

/** The record as created: with a stamp, unless it brings its own (an imported record). */
export function stamped(record: UserRecord): UserRecord {
  return { ...record, passwordStamp: record.passwordStamp ?? newPasswordStamp() };
}

/** Whether two hashes are the same hash of a password (the same salt and output). */
export function sameHash(a: PasswordHash, b: PasswordHash): boolean {
  return a.hash.toHex() === b.hash.toHex() && a.salt.toHex() === b.salt.toHex();
}
