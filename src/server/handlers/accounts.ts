/** REGISTER, LOGIN, RESUME, LOGOUT and CHANGE_PASSWORD. */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf, SessionKind } from "../../protocol/messages.ts";
import { usernameKey, usernameProblem } from "../../protocol/names.ts";
import type { UserRecord } from "../../store/types.ts";
import { type Handler, me, type ServerContext } from "../context.ts";
import { type BacklogRequest, endSession, farewell, welcome } from "../presence.ts";
import type { LoggedIn, Session } from "../session.ts";
import type { Attempt } from "../throttle.ts";
import { type Credentials, holdCredentials, stampOf, whileChanging } from "./session_recheck.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

function checkNewPassword(ctx: ServerContext, password: string): void {
  const min = ctx.config.accounts.minPasswordLength;
  if ([...password].length < min) {
    throw new ParleyError(ErrorCode.BAD_PASSWORD, `Passwords need at least ${min} characters`);
  }
}

/**
 * Counts a password or token check against its throttle from the start, so that checks made at
 * once cannot all slip past one count; refuses it while failed checks must wait.
 */
function attempt(begun: Attempt | number, what: string): Attempt {
  if (typeof begun === "number") {
    throw new ParleyError(
      ErrorCode.THROTTLED,
      `Too many ${what}; try again in ${Math.ceil(begun / 1000)} s`,
    );
  }
  return begun;
}

function refuseIfLoggedIn(session: Session): void {
  if (session.login) {
    throw new ParleyError(
      ErrorCode.ALREADY_LOGGED_IN,
      `This connection is already logged in as "${session.login.name}"; log out first`,
    );
  }
}

/**
 * Refuses registration when the operator has closed it, when it needs an invite code and none
 * came, or when this address or the server has used its allowance.
 */
function registrationAllowed(ctx: ServerContext, address: string, invite?: string): void {
  const mode = ctx.config.accounts.registration;
  if (mode === "closed") {
    throw new ParleyError(
      ErrorCode.REGISTER_CLOSED,
      "This server does not take new accounts; ask its operator",
    );
  }
  if (mode === "invite" && !invite) {
    throw new ParleyError(
      ErrorCode.BAD_INVITE,
      "This server takes new accounts by invitation only; give an invite code",
    );
  }
  const refused = ctx.registrations.take(address);
  if (refused) {
    const seconds = Math.ceil(refused.waitMs / 1000);
    throw new ParleyError(
      ErrorCode.THROTTLED,
      refused.scope === "address"
        ? `Too many new accounts from this address; try again in ${seconds} s`
        : `Too many new accounts on this server just now; try again in ${seconds} s`,
    );
  }
}

export const register: Handler<RequestBodyOf<typeof MsgType.REGISTER>> = async (
  ctx,
  session,
  body,
) => {
  const [name, password, code] = body;
  const problem = usernameProblem(name);
  if (problem) throw new ParleyError(ErrorCode.BAD_USERNAME, problem);
  checkNewPassword(ctx, password);
  const address = session.ip;
  // Without invitations a code sent along is ignored, as an older server would.
  const invite = ctx.config.accounts.registration === "invite" ? code : undefined;
  registrationAllowed(ctx, address, invite);
  const badInvite = () =>
    new ParleyError(ErrorCode.BAD_INVITE, "The invite code is unknown, used or expired");
  const taken = async () => {
    const like = await ctx.store.users.lookalike(name);
    return new ParleyError(
      ErrorCode.USERNAME_TAKEN,
      like === null || usernameKey(like) === usernameKey(name)
        ? `The username "${name}" is taken`
        : `The username "${name}" looks too much like "${like}", which is taken`,
    );
  };
  // Checked before the slow hash so that a taken name costs no hash (it still uses the
  // allowance: probing names is what the allowance is for); the atomic create decides.
  if (await ctx.store.users.get(name) || await ctx.store.users.lookalike(name)) throw await taken();
  // Checked here too so that a bad code costs no hash; taken only once the hash is done.
  if (invite !== undefined && !await ctx.store.invites.valid(invite)) throw badInvite();
  let hash;
  try {
    hash = await ctx.hasher.hash(password, "register");
  } catch (e) {
    // Refused before hashing (SERVER_BUSY): nothing was spent.
    ctx.registrations.giveBack(address);
    throw e;
  }
  const used = invite === undefined ? null : await ctx.store.invites.take(invite);
  if (invite !== undefined && used === null) throw badInvite();
  const created = new Date(session.clock.wall());
  if (!await ctx.store.users.create({ name, password: hash, created })) {
    if (used && invite !== undefined) await ctx.store.invites.giveBack(invite, used);
    throw await taken();
  }
  ctx.log.info("user.registered", {
    user: usernameKey(name),
    session: session.id,
    invited: used !== null,
  });
  return { type: MsgType.REG_OK, body: { username: name } };
};

/**
 * How long a replaced resume token still works, for a client whose LG_OK carrying its
 * successor was lost with the connection: it retries within its backoff (30 s at most) or
 * once its keepalive notices the dead link (60 s). A thief holding that token gains this long.
 */
export const ROTATION_GRACE_MS = 120_000;

type Identity = Omit<LoggedIn, "user" | "name">;

/**
 * Makes the session the user's, kicking any earlier session of the same account. Returns the
 * reply's follow-up: INITIALIZE and the inbox, after LG_OK. A one-shot session takes over
 * nothing: it is added beside the user's session, unannounced.
 */
function takeOver(
  ctx: ServerContext,
  session: Session,
  name: string,
  id: Identity,
  by: "password" | "resume",
  backlog: BacklogRequest = { resumed: false },
  credentials: Credentials = {},
) {
  const user = usernameKey(name);
  session.login = { user, name, ...id };
  session.loggedIn();
  session.channel.setInboundLimit(ctx.config.limits.maxFrameBytes);
  session.channel.setOutboundLimit(ctx.config.limits.maxOutboundBytes);
  if (id.oneShot) {
    ctx.hub.addOneShot(user, session);
    if (ctx.hub.distributed) holdCredentials(ctx, session, credentials);
    ctx.log.info("session.login", { user, session: session.id, by, one_shot: true });
    return () => welcome(ctx, session, false);
  }
  // Transfers belong to the old connection; end them while its session is still the user's.
  if (ctx.hub.sessionOf(user)) ctx.files.endAllOf(user, `${name} logged in from another place`);
  // Online on another node (a cluster): that session is ended there, and friends hear nothing.
  const elsewhere = ctx.hub.isOnline(user) && !ctx.hub.sessionOf(user);
  const previous = ctx.hub.attach(user, session);
  if (previous) replaced(ctx, previous, id.family ?? null, session.id);
  ctx.log.info("session.login", { user, session: session.id, by });
  if (ctx.hub.distributed) holdCredentials(ctx, session, credentials);
  return () => welcome(ctx, session, previous === undefined && !elsewhere, backlog);
}

/**
 * A newer login of the same user took over `previous` (here, or on another node of a cluster,
 * `by` null): KICK it without a word to friends, the user is still online.
 */
export function replaced(
  ctx: ServerContext,
  previous: Session,
  family: string | null,
  by: number | null,
): void {
  const lost = previous.login;
  if (!lost) return;
  previous.login = null;
  previous.pump?.stop();
  const { user, name } = lost;
  ctx.log.info("session.kicked", { user, session: previous.id, by: by ?? "another node" });
  void previous.kick(`Your account "${name}" logged in from another place`);
  // Another device took over: the kicked one's tokens end with it, so that a leaked token
  // cannot come back after the owner logs in again. The same family taking over is the same
  // device reconnecting (or a thief with its token, whom rotation exposes).
  if (lost.family && lost.family !== family) {
    ctx.store.tokens.revokeFamily(user, lost.family).catch((e) =>
      ctx.log.error("token.revoke_failed", { user, error: String(e) })
    );
  }
}

/** Ends every session of `user` but `except` (the account's credentials changed). */
async function endOthers(ctx: ServerContext, user: string, except: Session, reason: string) {
  const ended = [...ctx.hub.oneShotsOf(user)];
  const main = ctx.hub.sessionOf(user);
  if (main) ended.push(main);
  for (const other of ended) if (other !== except) await endSession(ctx, other, reason);
  ctx.hub.endElsewhere(user, reason);
}

function issueFor(ctx: ServerContext, user: string, device: Uint8Array | null, rotates: boolean) {
  const { accounts } = ctx.config;
  return ctx.store.tokens.issue(user, accounts.tokenTtlDays * DAY_MS, accounts.tokensPerUser, {
    device,
    rotates,
  });
}

/**
 * A CHANGE_PASSWORD may have run while this LOGIN hashed the old password: its revocation and
 * its ending of sessions came before this login's token and takeover, which must not survive it.
 * `verified`: the stamp of the password checked (a rehash keeps it).
 */
async function refuseIfPasswordChanged(ctx: ServerContext, name: string, verified: string | null) {
  const now = await ctx.store.users.get(name);
  if (!now || stampOf(now) !== verified) {
    throw new ParleyError(
      ErrorCode.WRONG_PASSWORD,
      "The password was changed while you logged in; log in with the new one",
    );
  }
}

/**
 * The account `name` if `password` is its password; otherwise throws NO_SUCH_USER or
 * WRONG_PASSWORD, after the same hashing work either way, so that the time does not tell them
 * apart. Settles the attempt.
 */
async function checkPassword(
  ctx: ServerContext,
  session: Session,
  tried: Attempt,
  name: string,
  password: string,
): Promise<UserRecord> {
  let record, right;
  try {
    record = usernameProblem(name) ? null : await ctx.store.users.get(name);
    right = record
      ? await ctx.hasher.verify(password, record.password)
      : await ctx.hasher.verifyNobody(password);
  } catch (e) {
    ctx.logins.withdrawn(tried); // the check did not run (SERVER_BUSY, a store fault)
    throw e;
  }
  if (record && right) {
    ctx.logins.succeeded(tried);
    return record;
  }
  ctx.logins.failed(tried);
  ctx.metrics.loginFailed("password");
  ctx.log.info("login.failed", { user: usernameKey(name), session: session.id, peer: session.ip });
  throw record
    ? new ParleyError(ErrorCode.WRONG_PASSWORD, "Wrong password")
    : new ParleyError(ErrorCode.NO_SUCH_USER, `There is no user named "${name}"`);
}

export const login: Handler<RequestBodyOf<typeof MsgType.LOGIN>> = async (ctx, session, body) => {
  refuseIfLoggedIn(session);
  const [name, password] = body;
  const options = body[2];
  const kind = options?.kind ?? SessionKind.INTERACTIVE;
  // Checked before the password: a malformed request costs no hash and no throttle count.
  if (kind !== SessionKind.INTERACTIVE && kind !== SessionKind.ONE_SHOT) {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      `Unknown session kind "${kind}"; use "interactive" or "one_shot"`,
    );
  }
  const tried = attempt(
    ctx.logins.beginPassword(usernameKey(name), session.ip),
    "failed logins",
  );
  const record = await checkPassword(ctx, session, tried, name, password);
  const verified = stampOf(record);
  if (ctx.hasher.isOutdated(record.password)) {
    // The same password at the configured cost: its stamp stays, so that the account's
    // sessions on other nodes (which hold it) are not taken for ended by a new password. Not
    // written if the password changed meanwhile: refuseIfPasswordChanged refuses this login.
    const stronger = await ctx.hasher.hash(password);
    await ctx.store.users.rehash(record.name, record.password, stronger);
  }
  const user = usernameKey(record.name);
  if (kind === SessionKind.ONE_SHOT) {
    await refuseIfPasswordChanged(ctx, record.name, verified);
    // A script's session: no token, so it leaves nothing behind (section 16.3).
    const after = takeOver(
      ctx,
      session,
      record.name,
      {
        family: null,
        rotates: false,
        device: null,
        oneShot: true,
      },
      "password",
      undefined,
      { password: verified },
    );
    ctx.metrics.login("password");
    return {
      type: MsgType.LG_OK,
      body: { username: record.name, token: null, expires: null },
      after,
    };
  }
  // A client that sends the third element knows that RESUME rotates the token.
  const rotates = options !== undefined;
  const device = options?.device ?? null;
  const issued = await issueFor(ctx, user, device, rotates);
  try {
    await refuseIfPasswordChanged(ctx, record.name, verified);
  } catch (e) {
    await ctx.store.tokens.revokeFamily(user, issued.family);
    throw e;
  }
  // Nothing awaited from here to the takeover: a CHANGE_PASSWORD after the check ends us.
  const after = takeOver(
    ctx,
    session,
    record.name,
    {
      family: issued.family,
      rotates,
      device,
      oneShot: false,
    },
    "password",
    undefined,
    { token: issued.token, expires: issued.expires, password: verified },
  );
  ctx.metrics.login("password");
  return {
    type: MsgType.LG_OK,
    body: { username: record.name, token: issued.token, expires: issued.expires },
    after,
  };
};

export const resume: Handler<RequestBodyOf<typeof MsgType.RESUME>> = async (
  ctx,
  session,
  { token, world_after },
) => {
  refuseIfLoggedIn(session);
  const tried = attempt(ctx.logins.beginToken(session.ip), "failed logins");
  let outcome;
  try {
    outcome = await ctx.store.tokens.resume(token, ROTATION_GRACE_MS);
  } catch (e) {
    ctx.logins.withdrawn(tried); // the check did not run: it is no failure
    throw e;
  }
  let user;
  try {
    user = outcome.kind === "ok" ? await ctx.store.users.get(outcome.family.user) : null;
    if (outcome.kind === "reused") {
      // Whoever holds the family's newer token (owner or thief) is logged out too.
      const { user: key, id } = outcome.family;
      const live = ctx.hub.sessionOf(key);
      const reason = "This session's resume token was used twice; log in again";
      if (live?.login?.family === id) await endSession(ctx, live, reason);
      ctx.hub.endElsewhere(key, reason, id);
      ctx.log.warn("token.reused", { user: key, session: session.id, peer: session.ip });
    }
  } catch (e) {
    ctx.logins.withdrawn(tried); // a store fault: the check did not finish
    throw e;
  }
  // The epoch moved if the user's tokens were revoked (a new password) while this one was
  // being checked: the token read may be gone.
  if (
    outcome.kind !== "ok" || !user ||
    ctx.store.tokens.epoch(outcome.family.user) !== outcome.epoch
  ) {
    ctx.logins.failed(tried);
    ctx.metrics.loginFailed("resume");
    throw new ParleyError(
      ErrorCode.BAD_TOKEN,
      outcome.kind === "reused"
        ? "This resume token was replaced and used again, so all of its device's sessions have ended; log in with your password"
        : "The resume token is unknown, revoked or expired; log in with your password",
    );
  }
  ctx.logins.succeeded(tried);
  const { family } = outcome;
  const after = takeOver(
    ctx,
    session,
    user.name,
    {
      family: family.id,
      rotates: family.rotates,
      device: family.device,
      oneShot: false,
    },
    "resume",
    { resumed: true, after: world_after },
    { token: outcome.token, expires: family.expires, password: stampOf(user) },
  );
  ctx.metrics.login("resume");
  return {
    type: MsgType.LG_OK,
    // A family that does not rotate answers as protocol version 1 did: keep the token you have.
    body: {
      username: user.name,
      token: family.rotates ? outcome.token : null,
      expires: family.expires,
    },
    after,
  };
};

export const logout: Handler<RequestBodyOf<typeof MsgType.LOGOUT>> = async (
  ctx,
  session,
  body,
) => {
  const self = me(session);
  const claimed = typeof body === "string" ? body : undefined;
  if (claimed !== undefined && claimed !== "" && usernameKey(claimed) !== self.user) {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      `This session is "${self.name}", not "${claimed}"`,
    );
  }
  const everywhere = typeof body === "object" && body?.everywhere === true;
  if (everywhere) {
    await ctx.store.tokens.revokeAll(self.user);
    await endOthers(ctx, self.user, session, `${self.name} logged out everywhere`);
  } else if (self.family) {
    await ctx.store.tokens.revokeFamily(self.user, self.family);
  }
  await farewell(ctx, session);
  ctx.log.info("session.logout", { user: self.user, session: session.id, everywhere });
  return { type: MsgType.OK, body: {} };
};

export const changePassword: Handler<RequestBodyOf<typeof MsgType.CHANGE_PASSWORD>> = async (
  ctx,
  session,
  [oldPassword, newPassword],
) => {
  const self = me(session);
  const record = await ctx.store.users.get(self.user);
  if (!record) throw new ParleyError(ErrorCode.NO_SUCH_USER, "This account no longer exists");
  // The same count as LOGIN: a session (or a stolen token) must not guess the password faster here.
  const tried = attempt(
    ctx.logins.beginPassword(self.user, session.ip),
    "wrong passwords",
  );
  let right;
  try {
    right = await ctx.hasher.verify(oldPassword, record.password);
  } catch (e) {
    ctx.logins.withdrawn(tried); // the check did not run: it is no failure
    throw e;
  }
  if (!right) {
    ctx.logins.failed(tried);
    ctx.log.info("password_change.failed", {
      user: self.user,
      session: session.id,
      peer: session.ip,
    });
    throw new ParleyError(ErrorCode.WRONG_PASSWORD, "Wrong current password");
  }
  ctx.logins.succeeded(tried);
  checkNewPassword(ctx, newPassword);
  // This session revokes its own token and changes its own password: no recheck ends it
  // meanwhile; it holds the new ones after.
  return await whileChanging(
    session,
    (renew) => changeOwnPassword(ctx, session, self, newPassword, renew),
  );
};

async function changeOwnPassword(
  ctx: ServerContext,
  session: Session,
  self: LoggedIn,
  newPassword: string,
  renew: (c: Credentials) => void,
) {
  const hash = await ctx.hasher.hash(newPassword);
  const stamp = await ctx.store.users.setPassword(self.user, hash);
  if (stamp === null) {
    throw new ParleyError(ErrorCode.NO_SUCH_USER, "This account no longer exists");
  }
  // A new password ends every resume token and every other session, including one that
  // resumed while the hash ran: a RESUME that read a token before this revocation fails its
  // epoch check, and one that got in before it is ended here.
  await ctx.store.tokens.revokeAll(self.user);
  await endOthers(
    ctx,
    self.user,
    session,
    `The password of "${self.name}" was changed; log in with the new one`,
  );
  if (session.login !== self) {
    // Kicked while the hash ran; the new password stands, this connection is closing.
    throw new ParleyError(
      ErrorCode.NOT_LOGGED_IN,
      "The password was changed, but this session was ended meanwhile; log in with the new one",
    );
  }
  const issued = await issueFor(ctx, self.user, self.device, self.rotates);
  if (session.login !== self) {
    await ctx.store.tokens.revokeFamily(self.user, issued.family);
    throw new ParleyError(ErrorCode.NOT_LOGGED_IN, "This session ended while the password changed");
  }
  session.login = { ...self, family: issued.family };
  renew({ token: issued.token, expires: issued.expires, password: stamp });
  ctx.log.info("user.password_changed", { user: self.user, session: session.id });
  return { type: MsgType.OK, body: { token: issued.token, expires: issued.expires } };
}

export const ping: Handler<RequestBodyOf<typeof MsgType.PING>> = (_ctx, _session, body) =>
  Promise.resolve({ type: MsgType.PONG, body });
