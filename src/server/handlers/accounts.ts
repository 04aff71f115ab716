/** REGISTER, LOGIN, RESUME, LOGOUT and CHANGE_PASSWORD. */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { usernameKey, usernameProblem } from "../../protocol/names.ts";
import type { UserRecord } from "../../store/types.ts";
import { type Handler, me, type ServerContext } from "../context.ts";
import { farewell, welcome } from "../presence.ts";
import type { Session } from "../session.ts";
import { addressKey, type Attempt } from "../throttle.ts";

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
  const address = addressKey(session.ip);
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
  if (!await ctx.store.users.create({ name, password: hash, created: new Date() })) {
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
 * Makes the session the user's, kicking any earlier session of the same account. Returns the
 * reply's follow-up: INITIALIZE and the inbox, after LG_OK.
 */
function takeOver(
  ctx: ServerContext,
  session: Session,
  name: string,
  token: Uint8Array | null,
  by: "password" | "resume",
) {
  const user = usernameKey(name);
  session.login = { user, name, token };
  session.channel.setInboundLimit(ctx.config.limits.maxFrameBytes);
  // Transfers belong to the old connection; end them while its session is still the user's.
  if (ctx.hub.sessionOf(user)) ctx.files.endAllOf(user, `${name} logged in from another place`);
  const previous = ctx.hub.attach(user, session);
  if (previous) {
    previous.login = null;
    previous.pump?.stop();
    ctx.log.info("session.kicked", { user, session: previous.id, by: session.id });
    void previous.kick(`Your account "${name}" logged in from another place`);
  }
  ctx.log.info("session.login", { user, session: session.id, by });
  return () => welcome(ctx, session, previous === undefined);
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
  const tried = attempt(
    ctx.logins.beginPassword(usernameKey(name), addressKey(session.ip)),
    "failed logins",
  );
  const record = await checkPassword(ctx, session, tried, name, password);
  if (ctx.hasher.isOutdated(record.password)) {
    await ctx.store.users.setPassword(record.name, await ctx.hasher.hash(password));
  }
  const { accounts } = ctx.config;
  const user = usernameKey(record.name);
  const issued = await ctx.store.tokens.issue(
    user,
    accounts.tokenTtlDays * DAY_MS,
    accounts.tokensPerUser,
  );
  const after = takeOver(ctx, session, record.name, issued.token, "password");
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
  token,
) => {
  refuseIfLoggedIn(session);
  const tried = attempt(ctx.logins.beginToken(addressKey(session.ip)), "failed logins");
  let record, user;
  try {
    record = await ctx.store.tokens.check(token);
    user = record && await ctx.store.users.get(record.user);
  } catch (e) {
    ctx.logins.withdrawn(tried); // the check did not run: it is no failure
    throw e;
  }
  if (!record || !user) {
    ctx.logins.failed(tried);
    ctx.metrics.loginFailed("resume");
    throw new ParleyError(
      ErrorCode.BAD_TOKEN,
      "The resume token is unknown, revoked or expired; log in with your password",
    );
  }
  ctx.logins.succeeded(tried);
  const after = takeOver(ctx, session, user.name, token, "resume");
  ctx.metrics.login("resume");
  return {
    type: MsgType.LG_OK,
    body: { username: user.name, token: null, expires: record.expires },
    after,
  };
};

export const logout: Handler<RequestBodyOf<typeof MsgType.LOGOUT>> = async (
  ctx,
  session,
  claimed,
) => {
  const self = me(session);
  if (claimed !== undefined && claimed !== "" && usernameKey(claimed) !== self.user) {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      `This session is "${self.name}", not "${claimed}"`,
    );
  }
  if (self.token) await ctx.store.tokens.revoke(self.token);
  await farewell(ctx, session);
  ctx.log.info("session.logout", { user: self.user, session: session.id });
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
    ctx.logins.beginPassword(self.user, addressKey(session.ip)),
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
  await ctx.store.users.setPassword(self.user, await ctx.hasher.hash(newPassword));
  // A new password ends every resume token; this session gets a fresh one.
  await ctx.store.tokens.revokeAll(self.user);
  const { accounts } = ctx.config;
  const issued = await ctx.store.tokens.issue(
    self.user,
    accounts.tokenTtlDays * DAY_MS,
    accounts.tokensPerUser,
  );
  session.login = { ...self, token: issued.token };
  ctx.log.info("user.password_changed", { user: self.user, session: session.id });
  return { type: MsgType.OK, body: { token: issued.token, expires: issued.expires } };
};

export const ping: Handler<RequestBodyOf<typeof MsgType.PING>> = (_ctx, _session, body) =>
  Promise.resolve({ type: MsgType.PONG, body });
