/** REGISTER, LOGIN, RESUME, LOGOUT and CHANGE_PASSWORD. */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { usernameKey, usernameProblem } from "../../protocol/names.ts";
import { type Handler, me, type ServerContext } from "../context.ts";
import { type BacklogRequest, farewell, welcome } from "../presence.ts";
import type { Session } from "../session.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

function checkNewPassword(ctx: ServerContext, password: string): void {
  const min = ctx.config.accounts.minPasswordLength;
  if ([...password].length < min) {
    throw new ParleyError(ErrorCode.BAD_PASSWORD, `Passwords need at least ${min} characters`);
  }
}

/** Refuses while failed logins from this address or for this name are being slowed down. */
function throttled(ctx: ServerContext, keys: string[]): void {
  const wait = ctx.logins.wait(keys);
  if (wait > 0) {
    throw new ParleyError(
      ErrorCode.THROTTLED,
      `Too many failed logins; try again in ${Math.ceil(wait / 1000)} s`,
    );
  }
}

function refuseIfLoggedIn(session: Session): void {
  if (session.login) {
    throw new ParleyError(
      ErrorCode.ALREADY_LOGGED_IN,
      `This connection is already logged in as "${session.login.name}"; log out first`,
    );
  }
}

export const register: Handler<RequestBodyOf<typeof MsgType.REGISTER>> = async (
  ctx,
  session,
  body,
) => {
  const [name, password] = body;
  const problem = usernameProblem(name);
  if (problem) throw new ParleyError(ErrorCode.BAD_USERNAME, problem);
  checkNewPassword(ctx, password);
  const taken = () => new ParleyError(ErrorCode.USERNAME_TAKEN, `The username "${name}" is taken`);
  // Checked before the slow hash so that a taken name costs nothing; the atomic create decides.
  if (await ctx.store.users.get(name)) throw taken();
  const hash = await ctx.hasher.hash(password);
  if (!await ctx.store.users.create({ name, password: hash, created: new Date() })) throw taken();
  ctx.log.info("user.registered", { user: usernameKey(name), session: session.id });
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
  backlog: BacklogRequest = { resumed: false },
) {
  const user = usernameKey(name);
  session.login = { user, name, token };
  session.channel.setInboundLimit(ctx.config.limits.maxFrameBytes);
  session.channel.setOutboundLimit(ctx.config.limits.maxOutboundBytes);
  // Transfers belong to the old connection; end them while its session is still the user's.
  if (ctx.hub.sessionOf(user)) ctx.files.endAllOf(user, `${name} logged in from another place`);
  const previous = ctx.hub.attach(user, session);
  if (previous) {
    previous.login = null;
    previous.pump?.stop();
    ctx.log.info("session.kicked", { user, session: previous.id, by: session.id });
    void previous.kick(`Your account "${name}" logged in from another place`);
  }
  ctx.log.info("session.login", { user, session: session.id });
  return () => welcome(ctx, session, previous === undefined, backlog);
}

export const login: Handler<RequestBodyOf<typeof MsgType.LOGIN>> = async (ctx, session, body) => {
  refuseIfLoggedIn(session);
  const [name, password] = body;
  const keys = [`ip:${session.ip}`, `user:${usernameKey(name)}`];
  throttled(ctx, keys);
  const record = usernameProblem(name) ? null : await ctx.store.users.get(name);
  if (!record) {
    ctx.logins.failed(keys.slice(0, 1));
    ctx.metrics.loginFailed("password");
    throw new ParleyError(ErrorCode.NO_SUCH_USER, `There is no user named "${name}"`);
  }
  if (!await ctx.hasher.verify(password, record.password)) {
    ctx.logins.failed(keys);
    ctx.metrics.loginFailed("password");
    ctx.log.info("login.failed", {
      user: usernameKey(name),
      session: session.id,
      peer: session.ip,
    });
    throw new ParleyError(ErrorCode.WRONG_PASSWORD, "Wrong password");
  }
  // Only the name's count: one good account must not wipe an address's record of guesses.
  ctx.logins.succeeded(keys.slice(1));
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
  const after = takeOver(ctx, session, record.name, issued.token);
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
  throttled(ctx, [`ip:${session.ip}`]);
  const record = await ctx.store.tokens.check(token);
  const user = record && await ctx.store.users.get(record.user);
  if (!record || !user) {
    ctx.logins.failed([`ip:${session.ip}`]);
    ctx.metrics.loginFailed("resume");
    throw new ParleyError(
      ErrorCode.BAD_TOKEN,
      "The resume token is unknown, revoked or expired; log in with your password",
    );
  }
  const after = takeOver(ctx, session, user.name, token, { resumed: true, after: world_after });
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
  if (!await ctx.hasher.verify(oldPassword, record.password)) {
    throw new ParleyError(ErrorCode.WRONG_PASSWORD, "Wrong current password");
  }
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
