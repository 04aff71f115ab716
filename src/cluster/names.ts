/**
 * Names in NATS: a user's identity as one subject or key token. Identities are lowercase
 * `[a-z0-9_.-]` (src/protocol/names.ts); `.` separates tokens in NATS, so it becomes `=`, which
 * no identity holds: the mapping is one to one.
 */

export function userToken(user: string): string {
  return user.replaceAll(".", "=");
}

export function userOfToken(token: string): string {
  return token.replaceAll("=", ".");
}
