/** ADD_FRIEND, REMOVE_FRIEND, LIST_FRIENDS, WHO and FIND_USER. */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { usernameKey, usernameProblem } from "../../protocol/names.ts";
import type { NamedUser, UserRecord } from "../../store/types.ts";
import { type Handler, me, type ServerContext } from "../context.ts";

/**
 * The registered user called `name`, or NO_SUCH_USER; without a promise when the user is in
 * memory (every chat message looks its recipient up).
 */
export function findUser(ctx: ServerContext, name: string): NamedUser | Promise<NamedUser> {
  if (usernameProblem(name)) return noSuchUser(name);
  const record = ctx.store.users.get(name);
  if (record instanceof Promise) return record.then((r) => named(name, r));
  return named(name, record);
}

function named(name: string, record: UserRecord | null): NamedUser {
  if (!record) noSuchUser(name);
  return { user: usernameKey(record.name), name: record.name };
}

function noSuchUser(name: string): never {
  throw new ParleyError(ErrorCode.NO_SUCH_USER, `There is no user named "${name}"`);
}

export const addFriend: Handler<RequestBodyOf<typeof MsgType.ADD_FRIEND>> = async (
  ctx,
  session,
  name,
) => {
  const self = me(session);
  const other = await findUser(ctx, name);
  if (other.user === self.user) {
    throw new ParleyError(ErrorCode.CANNOT_SELF, "You cannot add yourself as a friend");
  }
  const max = ctx.config.limits.maxFriends;
  for (const u of [self, other]) {
    if (await ctx.store.friends.count(u.user) >= max) {
      throw new ParleyError(ErrorCode.LIMIT_REACHED, `${u.name} already has ${max} friends`);
    }
  }
  if (!await ctx.store.friends.add(self, other)) {
    throw new ParleyError(ErrorCode.ALREADY_FRIENDS, `${other.name} is already your friend`);
  }
  const theirs = ctx.hub.sessionOf(other.user);
  return {
    type: MsgType.STATUS_ADD_FRIEND,
    body: { success: true, username: other.name, online: theirs !== undefined },
    after: () => theirs?.push(MsgType.NEW_FRIEND, { username: self.name, online: true }),
  };
};

export const removeFriend: Handler<RequestBodyOf<typeof MsgType.REMOVE_FRIEND>> = async (
  ctx,
  session,
  name,
) => {
  const self = me(session);
  const other = usernameKey(name);
  if (!await ctx.store.friends.remove(self.user, other)) {
    throw new ParleyError(ErrorCode.NOT_FRIENDS, `"${name}" is not your friend`);
  }
  return {
    type: MsgType.OK,
    body: { username: name },
    after: () => ctx.hub.sessionOf(other)?.push(MsgType.FRIEND_REMOVED, { username: self.name }),
  };
};

export const listFriends: Handler<unknown> = async (ctx, session) => {
  const friends = await ctx.store.friends.list(me(session).user);
  friends.sort((a, b) => a.user.localeCompare(b.user));
  return {
    type: MsgType.FRIEND_LIST,
    body: {
      friends: friends.map((f) => ({
        username: f.name,
        online: ctx.hub.sessionOf(f.user) !== undefined,
      })),
    },
  };
};

const WHO_DEFAULT_LIMIT = 100;

/** Who is online, sorted by name, a page at a time. */
export const who: Handler<RequestBodyOf<typeof MsgType.WHO>> = (ctx, _session, page) => {
  const offset = page?.offset ?? 0;
  const limit = page?.limit ?? WHO_DEFAULT_LIMIT;
  const names: string[] = [];
  for (const s of ctx.hub.sessions()) if (s.login) names.push(s.login.name);
  names.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  return Promise.resolve({
    type: MsgType.ONLINE,
    body: { total: names.length, offset, users: names.slice(offset, offset + limit) },
  });
};

/** Whether a user exists, and the registered spelling: a client checks a name before a chat. */
export const findUserRequest: Handler<RequestBodyOf<typeof MsgType.FIND_USER>> = async (
  ctx,
  _session,
  name,
) => {
  const found = await findUser(ctx, name);
  return { type: MsgType.OK, body: { username: found.name } };
};
