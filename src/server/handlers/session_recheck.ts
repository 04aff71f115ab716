/**
 * A cluster node checks its sessions against the store: once a login is attached (another node
 * may have changed the credentials meanwhile), and when the cluster hub says news may have been
 * lost (ends are at most once on NATS). A session whose credentials no longer hold ends with the
 * reason the lost end would have given.
 */

import type { UserRecord } from "../../store/types.ts";
import type { ServerContext } from "../context.ts";
import { endSession } from "../presence.ts";
import type { LoggedIn, Session } from "../session.ts";

/** What a login was checked against, to check again once it is attached (a cluster). */
export interface Credentials {
  /** The token the session was given or resumed with. */
  token?: Uint8Array | null;
  /** When that token's family expires: a family gone after that merely expired. */
  expires?: Date;
  /**
   * The passwordStamp of the password the login was verified with (or the account had, at a
   * RESUME); null for a record from before stamps. A rehash keeps it; a new password does not.
   */
  password?: string | null;
}

/**
 * Each attached session's credentials (a cluster), for recheckSessions; `changing` while its
 * own CHANGE_PASSWORD runs (it revokes its own token before it is given the new one).
 */
const held = new WeakMap<Session, Credentials & { changing?: boolean }>();

/** Remembers what `session` logged in with, and confirms it once attached (a cluster). */
export function holdCredentials(ctx: ServerContext, session: Session, c: Credentials): void {
  held.set(session, c);
  void confirmAttached(ctx, session, c);
}

/**
 * Runs `change` (the session's own CHANGE_PASSWORD) with no recheck ending the session
 * meanwhile: it revokes its own token and changes its own password. Then it holds the
 * credentials `change` gives `renew`, if it held any.
 */
export async function whileChanging<T>(
  session: Session,
  change: (renew: (c: Credentials) => void) => Promise<T>,
): Promise<T> {
  const mine = held.get(session);
  if (mine) mine.changing = true;
  try {
    return await change((c) => {
      if (held.has(session)) held.set(session, c);
    });
  } finally {
    if (mine) mine.changing = false;
  }
}

/**
 * In a cluster, another node may change the password or revoke the tokens between this login's
 * check and its takeover, and its message to end the account's sessions may arrive before the
 * takeover (finding nothing to end). That node commits the change before it sends the message,
 * so a read after the takeover sees it: a session whose token or password is gone by then ends.
 */
async function confirmAttached(ctx: ServerContext, session: Session, c: Credentials) {
  const login = session.login;
  if (!login) return;
  try {
    const why = await invalidated(ctx, session, login, c, true);
    if (why === null || session.login !== login) return;
    if (login.family) await ctx.store.tokens.revokeFamily(login.user, login.family);
    await endSession(ctx, session, why);
  } catch (e) {
    ctx.log.error("session.confirm_failed", { user: login.user, error: (e as Error).message });
  }
}

/**
 * Why a session's credentials no longer hold, as the end that changed them would say it; null
 * while they hold. `tokens` false reads only the user record (a new password, a deleted
 * account); true also reads the token's family (a LOGOUT everywhere, a reused token).
 */
async function invalidated(
  ctx: ServerContext,
  session: Session,
  login: LoggedIn,
  c: Credentials,
  tokens: boolean,
): Promise<string | null> {
  const record = await ctx.store.users.get(login.name);
  if (!record) return `The account "${login.name}" was deleted`;
  if (c.password !== undefined && stampOf(record) !== c.password) {
    return `The password of "${record.name}" was changed; log in with the new one`;
  }
  if (!tokens || !c.token) return null;
  const family = await ctx.store.tokens.familyOf(c.token);
  // A family past its end merely expired: a single server keeps such a session too.
  const expired = c.expires !== undefined && session.clock.wall() >= c.expires.getTime();
  if (family !== null || expired) return null;
  return `The resume tokens of "${record.name}" were revoked (a logout everywhere, or a token ` +
    "used twice); log in again";
}

/** A record's password stamp as Credentials hold it. */
export function stampOf(record: UserRecord): string | null {
  return record.passwordStamp ?? null;
}

/** How many sessions a recheck reads for at once. */
const RECHECK_PARALLEL = 16;

/**
 * A cluster node may have missed another node's end of a user's sessions (core NATS is at most
 * once: a NATS reconnect, a lost route): checks each of `sessions` against the store, as
 * confirmAttached does at login, and ends those whose credentials changed meanwhile with the
 * reason the end would have given. Rejects, after checking the rest, if any read failed.
 * Stops taking sessions once `signal` aborts (a newer pass superseded this one).
 */
export async function recheckSessions(
  ctx: ServerContext,
  sessions: Iterable<Session>,
  tokens: boolean,
  signal?: AbortSignal,
): Promise<{ checked: number; ended: number; stopped: boolean }> {
  const queue = [...sessions];
  let checked = 0, ended = 0;
  let failure: Error | null = null;
  const one = async (session: Session) => {
    const login = session.login;
    const c = held.get(session);
    if (!login || !c || c.changing) return;
    const why = await invalidated(ctx, session, login, c, tokens);
    checked++;
    // Re-read after the awaits: a session that changed its own password meanwhile, or ended,
    // is not this check's to end.
    if (why === null || session.login !== login || held.get(session) !== c || c.changing) return;
    ended++;
    ctx.log.info("session.recheck_ended", { user: login.user, session: session.id });
    await endSession(ctx, session, why);
  };
  const worker = async () => {
    // Checked before each read: a superseded pass leaves its reads to the new one at once.
    while (!signal?.aborted) {
      const s = queue.pop();
      if (s === undefined) return;
      try {
        await one(s);
      } catch (e) {
        failure ??= e as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: RECHECK_PARALLEL }, worker));
  const stopped = signal?.aborted ?? false;
  // A superseded pass's failure is the new pass's to meet.
  if (failure && !stopped) throw failure;
  return { checked, ended, stopped };
}
