/** REGISTER, LOGIN, RESUME, LOGOUT and CHANGE_PASSWORD. */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf, SessionKind } from "../../protocol/messages.ts";
import { usernameKey, usernameProblem } from "../../protocol/names.ts";
import { type Handler, me, type ServerContext } from "../context.ts";
import { type BacklogRequest, endSession, farewell, welcome } from "../presence.ts";
import type { LoggedIn, Session } from "../session.ts";
import type { PasswordHash } from "../../crypto/password.ts";

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
  backlog: BacklogRequest = { resumed: false },
) {
  const user = usernameKey(name);
  session.login = { user, name, ...id };
  session.channel.setInboundLimit(ctx.config.limits.maxFrameBytes);
  session.channel.setOutboundLimit(ctx.config.limits.maxOutboundBytes);
  if (id.oneShot) {
    ctx.hub.addOneShot(user, session);
    ctx.log.info("session.login", { user, session: session.id, one_shot: true });
    return () => welcome(ctx, session, false);
  }
  // Transfers belong to the old connection; end them while its session is still the user's.
  if (ctx.hub.sessionOf(user)) ctx.files.endAllOf(user, `${name} logged in from another place`);
  const previous = ctx.hub.attach(user, session);
  if (previous) {
    const lost = previous.login;
    previous.login = null;
    previous.pump?.stop();
    ctx.log.info("session.kicked", { user, session: previous.id, by: session.id });
    void previous.kick(`Your account "${name}" logged in from another place`);
    // Another device took over: the kicked one's tokens end with it, so that a leaked token
    // cannot come back after the owner logs in again. The same family taking over is the same
    // device reconnecting (or a thief with its token, whom rotation exposes).
    if (lost?.family && lost.family !== id.family) {
      ctx.store.tokens.revokeFamily(user, lost.family).catch((e) =>
        ctx.log.error("token.revoke_failed", { user, error: String(e) })
      );
    }
  }
  ctx.log.info("session.login", { user, session: session.id });
  return () => welcome(ctx, session, previous === undefined, backlog);
}

/** Ends every session of `user` but `except` (the account's credentials changed). */
async function endOthers(ctx: ServerContext, user: string, except: Session, reason: string) {
  const ended = [...ctx.hub.oneShotsOf(user)];
  const main = ctx.hub.sessionOf(user);
  if (main) ended.push(main);
  for (const other of ended) if (other !== except) await endSession(ctx, other, reason);
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
 */
async function refuseIfPasswordChanged(ctx: ServerContext, name: string, verified: PasswordHash) {
  const now = (await ctx.store.users.get(name))?.password;
  if (!now || now.hash.toHex() !== verified.hash.toHex()) {
    throw new ParleyError(
      ErrorCode.WRONG_PASSWORD,
      "The password was changed while you logged in; log in with the new one",
    );
  }
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
  let verified = record.password;
  if (ctx.hasher.isOutdated(record.password)) {
    verified = await ctx.hasher.hash(password);
    await ctx.store.users.setPassword(record.name, verified);
  }
  const user = usernameKey(record.name);
  const options = body[2];
  const kind = options?.kind ?? SessionKind.INTERACTIVE;
  if (kind !== SessionKind.INTERACTIVE && kind !== SessionKind.ONE_SHOT) {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      `Unknown session kind "${kind}"; use "interactive" or "one_shot"`,
    );
  }
  if (kind === SessionKind.ONE_SHOT) {
    await refuseIfPasswordChanged(ctx, record.name, verified);
    // A script's session: no token, so it leaves nothing behind (section 16.3).
    const after = takeOver(ctx, session, record.name, {
      family: null,
      rotates: false,
      device: null,
      oneShot: true,
    });
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
  const after = takeOver(ctx, session, record.name, {
    family: issued.family,
    rotates,
    device,
    oneShot: false,
  });
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
  const outcome = await ctx.store.tokens.resume(token, ROTATION_GRACE_MS);
  const user = outcome.kind === "ok" ? await ctx.store.users.get(outcome.family.user) : null;
  if (outcome.kind === "reused") {
    // Whoever holds the family's newer token (owner or thief) is logged out too.
    const { user: key, id } = outcome.family;
    const live = ctx.hub.sessionOf(key);
    if (live?.login?.family === id) {
      await endSession(ctx, live, "This session's resume token was used twice; log in again");
    }
    ctx.log.warn("token.reused", { user: key, session: session.id, peer: session.ip });
  }
  // The epoch moved if the user's tokens were revoked (a new password) while this one was
  // being checked: the token read may be gone.
  if (
    outcome.kind !== "ok" || !user ||
    ctx.store.tokens.epoch(outcome.family.user) !== outcome.epoch
  ) {
    ctx.logins.failed([`ip:${session.ip}`]);
    ctx.metrics.loginFailed("resume");
    throw new ParleyError(
      ErrorCode.BAD_TOKEN,
      outcome.kind === "reused"
        ? "This resume token was replaced and used again, so all of its device's sessions have ended; log in with your password"
        : "The resume token is unknown, revoked or expired; log in with your password",
    );
  }
  const { family } = outcome;
  const after = takeOver(ctx, session, user.name, {
    family: family.id,
    rotates: family.rotates,
    device: family.device,
    oneShot: false,
  }, { resumed: true, after: world_after });
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
  if (!await ctx.hasher.verify(oldPassword, record.password)) {
    throw new ParleyError(ErrorCode.WRONG_PASSWORD, "Wrong current password");
  }
  checkNewPassword(ctx, newPassword);
  await ctx.store.users.setPassword(self.user, await ctx.hasher.hash(newPassword));
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
  ctx.log.info("user.password_changed", { user: self.user, session: session.id });
  return { type: MsgType.OK, body: { token: issued.token, expires: issued.expires } };
};

export const ping: Handler<RequestBodyOf<typeof MsgType.PING>> = (_ctx, _session, body) =>
  Promise.resolve({ type: MsgType.PONG, body });
