/**
 * ADD_FRIEND, REMOVE_FRIEND, LIST_FRIENDS, WHO, FIND_USER, and the blocks: BLOCK, UNBLOCK, LIST_BLOCKS.
 *
 * Friendship needs both sides: ADD_FRIEND asks, and the other side's ADD_FRIEND answers (seed 000
 * made it immediate, which let a stranger befriend anyone and watch their presence). A block
 * ends any friendship, request and invitation between the two and keeps them apart: no
 * messages, requests, invitations, file offers or presence either way.
 */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { usernameKey, usernameProblem } from "../../protocol/names.ts";
import type { NamedUser, UserRecord } from "../../store/types.ts";
import { type Handler, me, type Reply, type ServerContext } from "../context.ts";

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

/** Whether a block stands between `a` and `b`, either way; without a promise when known. */
export function apart(ctx: ServerContext, a: string, b: string): boolean | Promise<boolean> {
  const set = ctx.store.blocks.either(a);
  if (set instanceof Promise) return set.then((s) => s.has(b));
  return set.has(b);
}

/**
 * BLOCKED when a block stands between `self` and `other`. The blocked user is told, not fooled:
 * a SEND that pretended to succeed would get a SENT that is not durable, and the block shows
 * anyway (the friendship ended, presence stopped).
 */
export async function refuseBlocked(
  ctx: ServerContext,
  self: NamedUser,
  other: NamedUser,
): Promise<void> {
  if (!await apart(ctx, self.user, other.user)) return;
  throw await blockedError(ctx, self, other);
}

/** The BLOCKED error for `self` and `other`, saying which side blocked. */
export async function blockedError(
  ctx: ServerContext,
  self: NamedUser,
  other: NamedUser,
): Promise<ParleyError> {
  return await ctx.store.blocks.blocked(self.user, other.user)
    ? new ParleyError(ErrorCode.BLOCKED, `You have blocked ${other.name}; unblock them first`)
    : new ParleyError(ErrorCode.BLOCKED, `${other.name} has blocked you`);
}

export async function isFriend(ctx: ServerContext, a: string, b: string): Promise<boolean> {
  return (await ctx.store.friends.list(a)).some((f) => f.user === b);
}

function checkFriendRoom(ctx: ServerContext, ...users: NamedUser[]): Promise<void> {
  const max = ctx.config.limits.maxFriends;
  return (async () => {
    for (const u of users) {
      if (await ctx.store.friends.count(u.user) >= max) {
        throw new ParleyError(ErrorCode.LIMIT_REACHED, `${u.name} already has ${max} friends`);
      }
    }
  })();
}

/**
 * Asks `name` to be friends, or answers their request: friends only once both sides have added
 * each other. Until then the asker sees no presence (`online` is false, `pending` true).
 */
export const addFriend: Handler<RequestBodyOf<typeof MsgType.ADD_FRIEND>> = async (
  ctx,
  session,
  name,
): Promise<Reply> => {
  const self = me(session);
  const other = await findUser(ctx, name);
  if (other.user === self.user) {
    throw new ParleyError(ErrorCode.CANNOT_SELF, "You cannot add yourself as a friend");
  }
  await refuseBlocked(ctx, self, other);
  await checkFriendRoom(ctx, self, other);
  if (await isFriend(ctx, self.user, other.user)) {
    throw new ParleyError(ErrorCode.ALREADY_FRIENDS, `${other.name} is already your friend`);
  }
  if (await ctx.store.friends.hasRequest(other.user, self.user)) {
    // They asked first: this is the answer, and both are friends now.
    if (!await ctx.store.friends.acceptRequest(other, self)) {
      throw new ParleyError(ErrorCode.ALREADY_FRIENDS, `${other.name} is already your friend`);
    }
    return {
      type: MsgType.STATUS_ADD_FRIEND,
      body: { success: true, username: other.name, online: ctx.hub.isOnline(other.user) },
      after: () =>
        ctx.hub.push(other.user, MsgType.NEW_FRIEND, { username: self.name, online: true }),
    };
  }
  const requested = await ctx.store.friends.request(self, other, ctx.config.limits.maxFriends);
  if (requested === "full") {
    throw new ParleyError(
      ErrorCode.LIMIT_REACHED,
      `Too many friend requests are waiting, from you or for ${other.name}`,
    );
  }
  return {
    type: MsgType.STATUS_ADD_FRIEND,
    body: { success: true, username: other.name, online: false, pending: true },
    // Asked again while waiting: no second push.
    after: () => {
      if (requested === "requested") {
        ctx.hub.push(other.user, MsgType.FRIEND_REQUEST, { username: self.name });
      }
    },
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
    // Not friends: declines their request or withdraws one's own, without telling them.
    const declined = await ctx.store.friends.dropRequest(other, self.user);
    const withdrawn = await ctx.store.friends.dropRequest(self.user, other);
    if (declined || withdrawn) return { type: MsgType.OK, body: { username: name } };
    throw new ParleyError(ErrorCode.NOT_FRIENDS, `"${name}" is not your friend`);
  }
  return {
    type: MsgType.OK,
    body: { username: name },
    after: () => ctx.hub.push(other, MsgType.FRIEND_REMOVED, { username: self.name }),
  };
};

export const listFriends: Handler<unknown> = async (ctx, session) => {
  const user = me(session).user;
  const [friends, requests] = await Promise.all([
    ctx.store.friends.list(user),
    ctx.store.friends.requests(user),
  ]);
  friends.sort((a, b) => a.user.localeCompare(b.user));
  return {
    type: MsgType.FRIEND_LIST,
    body: {
      friends: friends.map((f) => ({
        username: f.name,
        online: ctx.hub.isOnline(f.user),
      })),
      requests: sortedNames(requests.incoming),
      requested: sortedNames(requests.outgoing),
    },
  };
};

/** Registered names sorted ignoring case, as every list of names on the wire is. */
export function sortedNames(users: readonly NamedUser[]): string[] {
  return users.map((u) => u.name).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
}

export const block: Handler<RequestBodyOf<typeof MsgType.BLOCK>> = async (ctx, session, name) => {
  const self = me(session);
  const other = await findUser(ctx, name);
  if (other.user === self.user) {
    throw new ParleyError(ErrorCode.CANNOT_SELF, "You cannot block yourself");
  }
  const max = ctx.config.limits.maxBlocks;
  if (await ctx.store.blocks.add(self, other, max) === "full") {
    throw new ParleyError(ErrorCode.LIMIT_REACHED, `You have blocked ${max} users already`);
  }
  // Whatever joined the two ends (again, if BLOCK is repeated: a race may have left something).
  const wereFriends = await ctx.store.friends.remove(self.user, other.user);
  await ctx.store.friends.dropRequest(self.user, other.user);
  await ctx.store.friends.dropRequest(other.user, self.user);
  await ctx.store.invitations.removeFrom(self.user, other.user);
  await ctx.store.invitations.removeFrom(other.user, self.user);
  ctx.files.endBetween(self.user, other.user, `${self.name} ended the transfer`);
  ctx.log.info("user.blocked", { by: self.user });
  return {
    type: MsgType.OK,
    body: { username: other.name },
    after: () => {
      if (wereFriends) {
        ctx.hub.push(other.user, MsgType.FRIEND_REMOVED, { username: self.name });
      }
    },
  };
};

export const unblock: Handler<RequestBodyOf<typeof MsgType.UNBLOCK>> = async (
  ctx,
  session,
  name,
) => {
  const self = me(session);
  if (!await ctx.store.blocks.remove(self.user, usernameKey(name))) {
    throw new ParleyError(ErrorCode.NOT_BLOCKED, `You have not blocked "${name}"`);
  }
  return { type: MsgType.OK, body: { username: name } };
};

export const listBlocks: Handler<unknown> = async (ctx, session) => {
  const blocked = await ctx.store.blocks.list(me(session).user);
  return { type: MsgType.BLOCK_LIST, body: { users: sortedNames(blocked) } };
};

const WHO_DEFAULT_LIMIT = 100;

/** Who is online, sorted by name, a page at a time; not those with a block between. */
export const who: Handler<RequestBodyOf<typeof MsgType.WHO>> = async (ctx, session, page) => {
  const offset = page?.offset ?? 0;
  const limit = page?.limit ?? WHO_DEFAULT_LIMIT;
  const hidden = await ctx.store.blocks.either(me(session).user);
  const names: string[] = [];
  for (const u of ctx.hub.online()) if (!hidden.has(u.user)) names.push(u.name);
  names.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  return {
    type: MsgType.ONLINE,
    body: { total: names.length, offset, users: names.slice(offset, offset + limit) },
  };
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
