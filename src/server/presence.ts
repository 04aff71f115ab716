/**
 * Arrivals and departures: INITIALIZE and the inbox pump when a user logs in, presence pushes
 * to online friends when a user comes and goes.
 */

import { MsgType } from "../protocol/messages.ts";
import { EncodedValue } from "../protocol/value.ts";
import type { WorldStore } from "../store/types.ts";
import type { ServerContext } from "./context.ts";
import { InboxPump, passBody } from "./delivery.ts";
import { sortedNames } from "./handlers/friends.ts";
import { invitationList, liveInvitations } from "./handlers/groups.ts";
import type { Session } from "./session.ts";

/**
 * Tells each online friend of `user` that they came or went. Friends are the people the user
 * accepted (a friendship needs both sides), and a block ends a friendship, so presence reaches
 * no one else.
 */
export async function tellFriends(ctx: ServerContext, user: string, name: string, type: number) {
  for (const friend of await ctx.store.friends.list(user)) {
    ctx.hub.sessionOf(friend.user)?.push(type, { username: name });
  }
}

const encodedBacklogs = new WeakMap<WorldStore, { version: number; value: EncodedValue }>();

/** The world backlog as INITIALIZE carries it, encoded once per change rather than per login. */
function worldBacklog(world: WorldStore): EncodedValue {
  let cached = encodedBacklogs.get(world);
  if (!cached || cached.version !== world.version) {
    cached = {
      version: world.version,
      value: new EncodedValue(world.recent().map((m) => passBody(m, 0))),
    };
    encodedBacklogs.set(world, cached);
  }
  return cached.value;
}

function limitsOf(ctx: ServerContext) {
  return {
    max_frame_bytes: ctx.config.limits.maxFrameBytes,
    max_text_bytes: ctx.config.limits.maxTextBytes,
    max_image_bytes: ctx.config.limits.maxImageBytes,
    max_file_bytes: ctx.config.limits.maxFileBytes,
  };
}

/** After LG_OK: INITIALIZE, then the user's undelivered messages. */
export async function welcome(
  ctx: ServerContext,
  session: Session,
  cameOnline: boolean,
): Promise<void> {
  const login = session.login;
  if (!login) return;
  const { user, name } = login;
  if (login.oneShot) {
    // A script's session: the limits only, and nothing follows (section 8.8 of PROTOCOL.md).
    session.push(MsgType.INITIALIZE, {
      friends: [],
      groups: [],
      world: [],
      pending: 0,
      requests: [],
      invitations: [],
      limits: limitsOf(ctx),
    });
    return;
  }
  const [friends, groups, stats, requests, invitations] = await Promise.all([
    ctx.store.friends.list(user),
    ctx.store.groups.groupsOf(user),
    ctx.store.inbox.stats(user),
    ctx.store.friends.requests(user),
    liveInvitations(ctx, user),
  ]);
  if (session.login !== login) return; // kicked or logged out meanwhile
  session.push(MsgType.INITIALIZE, {
    friends: friends
      .sort((a, b) => a.user.localeCompare(b.user))
      .map((f) => ({ username: f.name, online: ctx.hub.sessionOf(f.user) !== undefined })),
    groups: groups.map((g) => ({ group_id: g.id, group_name: g.name })),
    world: worldBacklog(ctx.store.world),
    pending: stats.count,
    // What waits for the user's consent: friend requests and group invitations.
    requests: sortedNames(requests.incoming),
    invitations: invitationList(invitations),
    limits: limitsOf(ctx),
  });
  // Leave room in the outbound queue for frames beside what the pump has in flight.
  const { maxOutboundBytes, maxFrameBytes } = ctx.config.limits;
  const windowBytes = Math.max(
    maxFrameBytes,
    Math.min(maxOutboundBytes / 4, maxOutboundBytes - 3 * maxFrameBytes),
  );
  session.pump = new InboxPump(ctx, session, user, windowBytes);
  session.pump.start();
  if (cameOnline) await tellFriends(ctx, user, name, MsgType.FRIEND_ONLINE);
}

/** The session stops being the user's (logout, disconnect): stop its pump, tell friends. */
export async function farewell(ctx: ServerContext, session: Session): Promise<void> {
  const login = session.login;
  session.pump?.stop();
  session.pump = null;
  if (!login) return;
  session.login = null;
  session.loggedOut();
  session.channel.setInboundLimit(ctx.config.limits.preLoginFrameBytes);
  if (login.oneShot) {
    // It was never online and had no transfers: nobody hears of it leaving.
    ctx.hub.removeOneShot(login.user, session);
    return;
  }
  ctx.files.endAllOf(login.user, `${login.name} went offline`);
  if (ctx.hub.detach(login.user, session)) {
    await tellFriends(ctx, login.user, login.name, MsgType.FRIEND_OFFLINE);
  }
}

/**
 * Ends a session for good (its tokens were revoked, its password changed): logged out as by a
 * LOGOUT, then KICK and close.
 */
export async function endSession(ctx: ServerContext, session: Session, reason: string) {
  const user = session.login?.user;
  await farewell(ctx, session);
  ctx.log.info("session.ended", { user, session: session.id, reason });
  void session.kick(reason);
}
