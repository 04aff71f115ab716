/**
 * Arrivals and departures: INITIALIZE and the inbox pump when a user logs in, presence pushes
 * to online friends when a user comes and goes.
 */

import { MsgType } from "../protocol/messages.ts";
import { EncodedValue } from "../protocol/value.ts";
import type { WorldStore } from "../store/types.ts";
import type { ServerContext } from "./context.ts";
import { InboxPump, passBody } from "./delivery.ts";
import type { Session } from "./session.ts";

/** Tells each online friend of `user` that they came or went. */
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

/** After LG_OK: INITIALIZE, then the user's undelivered messages. */
export async function welcome(
  ctx: ServerContext,
  session: Session,
  cameOnline: boolean,
): Promise<void> {
  const login = session.login;
  if (!login) return;
  const { user, name } = login;
  const [friends, groups, stats] = await Promise.all([
    ctx.store.friends.list(user),
    ctx.store.groups.groupsOf(user),
    ctx.store.inbox.stats(user),
  ]);
  if (session.login !== login) return; // kicked or logged out meanwhile
  session.push(MsgType.INITIALIZE, {
    friends: friends
      .sort((a, b) => a.user.localeCompare(b.user))
      .map((f) => ({ username: f.name, online: ctx.hub.sessionOf(f.user) !== undefined })),
    groups: groups.map((g) => ({ group_id: g.id, group_name: g.name })),
    world: worldBacklog(ctx.store.world),
    pending: stats.count,
    limits: {
      max_frame_bytes: ctx.config.limits.maxFrameBytes,
      max_text_bytes: ctx.config.limits.maxTextBytes,
      max_image_bytes: ctx.config.limits.maxImageBytes,
      max_file_bytes: ctx.config.limits.maxFileBytes,
    },
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
  session.loggedOutAt = Date.now();
  session.channel.setInboundLimit(ctx.config.limits.preLoginFrameBytes);
  session.channel.setOutboundLimit(ctx.config.limits.preLoginOutboundBytes);
  ctx.files.endAllOf(login.user, `${login.name} went offline`);
  if (ctx.hub.detach(login.user, session)) {
    await tellFriends(ctx, login.user, login.name, MsgType.FRIEND_OFFLINE);
  }
}
