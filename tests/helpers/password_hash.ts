import type { PasswordHash } from "../../src/crypto/password.ts";

/** A well-formed password hash for records that no test logs in to (no scrypt run). */
export const HASH: PasswordHash = {
  alg: "scrypt",
  N: 1024,
  r: 8,
  p: 1,
  salt: new Uint8Array(16).fill(1),
  hash: new Uint8Array(32).fill(2),
};
