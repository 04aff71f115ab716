/**
 * Arrivals and departures: INITIALIZE and the inbox pump when a user logs in, presence pushes
 * to online friends when a user comes and goes.
 */

import { MsgType } from "../protocol/messages.ts";
import { WORLD_ENTRY_OVERHEAD_BYTES, worldBacklogBudget } from "../config/config.ts";
import { EncodedValue, utf8Length } from "../protocol/value.ts";
import type { ChatMessage, WorldEntry, WorldStore } from "../store/types.ts";
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
    ctx.hub.push(friend.user, type, { username: name });
  }
}

/**
 * Tells the online friends of `user` on this node only that they went: a cluster node that
 * died could not tell anyone, so every node tells its own sessions.
 */
export async function tellLocalFriends(ctx: ServerContext, user: string, name: string) {
  for (const friend of await ctx.store.friends.list(user)) {
    ctx.hub.sessionOf(friend.user)?.push(MsgType.FRIEND_OFFLINE, { username: name });
  }
}

/**
 * A client that resumes again within this time without saying which world messages it has gets
 * only those that came since its last INITIALIZE: a token replayed in a loop must not make the
 * server send the whole backlog every time.
 */
export const WORLD_REPLAY_MS = 10_000;
/** Users remembered for WORLD_REPLAY_MS; older records are pruned once there are more. */
const MAX_REPLAY_RECORDS = 10_000;

const entryBytes = new WeakMap<ChatMessage, number>();

/** An upper bound of a world message's size in INITIALIZE, measured once per message. */
function sizeInBacklog(m: ChatMessage): number {
  let size = entryBytes.get(m);
  if (size === undefined) {
    size = utf8Length(m.text ?? "") + WORLD_ENTRY_OVERHEAD_BYTES;
    entryBytes.set(m, size);
  }
  return size;
}

interface BacklogCache {
  version: number;
  /** The newest entries that fit the budget, encoded once per change rather than per login. */
  value: EncodedValue;
  /** Where those entries start in the backlog. */
  from: number;
  budget: number;
}

const encodedBacklogs = new WeakMap<WorldStore, BacklogCache>();
const replays = new WeakMap<WorldStore, Map<string, { at: number; seq: number }>>();

/** Where the newest entries that fit `budget` start. */
function firstThatFits(entries: readonly WorldEntry[], budget: number): number {
  let total = 0;
  let i = entries.length;
  while (i > 0 && total + sizeInBacklog(entries[i - 1].message) <= budget) {
    total += sizeInBacklog(entries[--i].message);
  }
  return i;
}

/** What a login asks of the world backlog. */
export interface BacklogRequest {
  /** A RESUME (a reconnect) rather than a password login. */
  resumed: boolean;
  /** The id of the newest world message the client has (RESUME's `world_after`). */
  after?: Uint8Array;
}

/**
 * The world backlog for one login's INITIALIZE: the messages after the client's `after` (all if
 * it names none or one no longer kept), after what a RESUME of the same user got moments ago,
 * and never more than the budget, newest kept.
 */
function worldBacklog(
  ctx: ServerContext,
  user: string,
  request: BacklogRequest,
  now: number,
): EncodedValue {
  const world = ctx.store.world;
  const entries = world.entries();
  const budget = worldBacklogBudget(ctx.config.limits.maxFrameBytes);
  let cached = encodedBacklogs.get(world);
  if (!cached || cached.version !== world.version || cached.budget !== budget) {
    const from = firstThatFits(entries, budget);
    cached = {
      version: world.version,
      value: new EncodedValue(entries.slice(from).map((e) => passBody(e.message, 0))),
      from,
      budget,
    };
    encodedBacklogs.set(world, cached);
  }
  let from = cached.from;
  let cursorFound = false;
  if (request.after) {
    const at = entries.findIndex((e) => sameId(e.message.id, request.after!));
    if (at >= 0) from = Math.max(from, at + 1);
    cursorFound = at >= 0;
  }
  let seen = replays.get(world);
  if (!seen) replays.set(world, seen = new Map());
  const last = seen.get(user);
  // The guard is for clients that do not say what they have (or name what is not there): one
  // that does gets what follows its cursor, even if its last INITIALIZE was lost with the link.
  if (request.resumed && !cursorFound && last && now - last.at < WORLD_REPLAY_MS) {
    while (from < entries.length && entries[from].seq <= last.seq) from++;
  }
  remember(seen, user, { at: now, seq: entries.at(-1)?.seq ?? 0 }, now);
  if (from === cached.from) return cached.value;
  return new EncodedValue(entries.slice(from).map((e) => passBody(e.message, 0)));
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Records what a user's login got; the oldest records go once there are too many. */
function remember(
  seen: Map<string, { at: number; seq: number }>,
  user: string,
  record: { at: number; seq: number },
  now: number,
): void {
  seen.delete(user); // re-inserted last: the map stays in the order of the records' times
  seen.set(user, record);
  if (seen.size <= MAX_REPLAY_RECORDS) return;
  for (const [key, r] of seen) {
    if (now - r.at < WORLD_REPLAY_MS && seen.size <= MAX_REPLAY_RECORDS) break;
    seen.delete(key);
  }
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
  backlog: BacklogRequest = { resumed: false },
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
      .map((f) => ({ username: f.name, online: ctx.hub.isOnline(f.user) })),
    groups: groups.map((g) => ({ group_id: g.id, group_name: g.name })),
    world: worldBacklog(ctx, user, backlog, session.clock.now()),
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
  session.channel.setOutboundLimit(ctx.config.limits.preLoginOutboundBytes);
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
