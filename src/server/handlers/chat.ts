/**
 * SEND and ACK. A private or group message is durable in each recipient's inbox before SENT
 * goes back; it leaves the server only when the recipient acknowledges it. World messages go
 * to everyone online and into the bounded backlog.
 */

import type { Clock, TimerHandle } from "../../clock/clock.ts";
import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { utf8Length, type Value } from "../../protocol/value.ts";
import { Completion } from "../../store/completion.ts";
import { afterTurn } from "../../transport/turn.ts";
import { usernameKey } from "../../protocol/names.ts";
import type { ChatMessage, Enqueued, NamedUser, QueueRefusal } from "../../store/types.ts";
import { type Handler, me, type Reply, type ServerContext } from "../context.ts";
import type { LoggedIn, Session } from "../session.ts";
import { blockedError, findUser } from "./friends.ts";

type SendBody = RequestBodyOf<typeof MsgType.SEND>;

/** Checks the content and builds the message (without its destination). */
function content(
  ctx: ServerContext,
  self: LoggedIn,
  body: SendBody,
  clock: Clock,
): ChatMessage {
  const { limits } = ctx.config;
  const time = new Date(clock.wall());
  const message: ChatMessage = { id: body.id, time, from: self.name, kind: "text" };
  if (body.type === "text") {
    if (typeof body.data !== "string" || body.data.length === 0) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, 'A "text" message carries a non-empty str');
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes: only a text that may be over the limit is measured.
    const size = body.data.length * 3 > limits.maxTextBytes ? utf8Length(body.data) : 0;
    if (size > limits.maxTextBytes) {
      throw new ParleyError(
        ErrorCode.TOO_LARGE,
        `Text messages are limited to ${limits.maxTextBytes} bytes; this one has ${size}`,
      );
    }
    message.text = body.data;
  } else if (body.type === "image") {
    if (!(body.data instanceof Uint8Array) || body.data.length === 0) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, 'An "image" message carries non-empty bytes');
    }
    if (body.data.length > limits.maxImageBytes) {
      throw new ParleyError(
        ErrorCode.TOO_LARGE,
        `Images are limited to ${limits.maxImageBytes} bytes; this one has ${body.data.length}`,
      );
    }
    message.kind = "image";
    message.image = body.data;
    if (body.name !== undefined) message.name = body.name;
  } else {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      `Unknown message type "${body.type}"; use "text" or "image"`,
    );
  }
  return message;
}

export const send: Handler<SendBody> = (ctx, session, body) => {
  const self = me(session);
  const targets = (body.target_username !== undefined ? 1 : 0) +
    (body.group_id !== undefined ? 1 : 0) + (body.world ? 1 : 0);
  if (targets !== 1) {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      "Give exactly one of target_username, group_id or world",
    );
  }
  const message = content(ctx, self, body, session.clock);
  if (body.world) return sendToWorld(ctx, session, message);
  if (body.group_id !== undefined) return sendToGroup(ctx, self, message, body.group_id);
  // A private message to a user already in memory is answered without waiting for anything.
  const to = findUser(ctx, body.target_username!);
  if (to instanceof Promise) return to.then((t) => sendToUser(ctx, self, message, t));
  return sendToUser(ctx, self, message, to);
};

function sendToWorld(
  ctx: ServerContext,
  session: Session,
  message: ChatMessage,
): Reply | Promise<Reply> {
  if (message.kind !== "text") {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      "The world room takes text; send images to friends or groups",
    );
  }
  message.world = true;
  // Each world message becomes one sealed copy per user online. While the server's outbound
  // queues, with the copies of world messages accepted and not yet sent out, hold more than the
  // mark, the sender waits here (and its connection is not read): a flood then goes at the pace
  // the readers read, instead of piling up in every queue.
  // The mark keeps room for one more copy: a reader may hold all that waits (the others have
  // caught up), and with this message's copy it must still fit under its own limit, which is at
  // most the mark.
  const mark = ctx.config.limits.serverOutboundBytes - copyBytes(message);
  if (ctx.outbound.bytes + comingOf(ctx).bytes > mark) {
    return worldRoom(ctx, mark, session.clock).then(() => acceptWorld(ctx, session, message));
  }
  return acceptWorld(ctx, session, message);
}

/** About what one sealed copy of a world message takes (the PASS fields beside the text are small). */
function copyBytes(message: ChatMessage): number {
  return utf8Length(message.text!) + 128;
}

/** A server's world messages accepted whose copies are not sealed (so not counted) yet. */
class WorldComing {
  /** Sealed bytes that those copies will add. */
  bytes = 0;
  /** Resolved (and replaced) whenever a reservation is released. */
  #ended = Promise.withResolvers<void>();

  /** Adds `bytes`; the function returned takes them off again, once however often it is called. */
  reserve(bytes: number): () => void {
    this.bytes += bytes;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.bytes -= bytes;
      if (this.bytes < 0) throw new Error(`World copies coming went negative: ${this.bytes}`);
      this.#ended.resolve();
      this.#ended = Promise.withResolvers<void>();
    };
  }

  get ended(): Promise<void> {
    return this.#ended.promise;
  }
}

const worldComing = new WeakMap<ServerContext, WorldComing>();

function comingOf(ctx: ServerContext): WorldComing {
  let coming = worldComing.get(ctx);
  if (!coming) worldComing.set(ctx, coming = new WorldComing());
  return coming;
}

/**
 * How long a world message waits for room before the readers that hold the most are cut off.
 * Readers that keep up drain a burst within this; one that does not (or only trickles, which the
 * write stall of limits.writeStallMs does not catch) must not hold the room up for everyone.
 */
export const WORLD_ROOM_WAIT_MS = 2000;

/** Waits until a world message's copies fit under the mark, for WORLD_ROOM_WAIT_MS at most. */
async function worldRoom(ctx: ServerContext, mark: number, clock: Clock): Promise<void> {
  const coming = comingOf(ctx);
  const deadline = clock.now() + WORLD_ROOM_WAIT_MS;
  while (ctx.outbound.bytes + coming.bytes > mark) {
    const left = deadline - clock.now();
    if (left <= 0) {
      cutSlowReaders(ctx, mark);
      return; // accepted anyway: every queue is still bounded by limits.maxOutboundBytes
    }
    let timer: TimerHandle | undefined;
    // Copies still coming count until they are sealed; then only what waits for the sockets.
    await Promise.race([
      coming.bytes > 0 ? coming.ended : ctx.outbound.room(mark),
      new Promise((r) => timer = clock.setTimer(() => r(undefined), left)),
    ]);
    clock.clearTimer(timer);
  }
}

/**
 * Closes the sessions that hold more than an eighth of the mark each: with the room held up
 * that long, they are the readers that do not keep up.
 */
function cutSlowReaders(ctx: ServerContext, mark: number): void {
  for (const s of ctx.hub.sessions()) {
    const waiting = s.channel.outboundBytes;
    if (waiting > mark / 8) {
      ctx.log.info("session.slow_reader", { session: s.id, waiting });
      s.channel.close();
    }
  }
}

function acceptWorld(ctx: ServerContext, session: Session, message: ChatMessage): Reply {
  // SENT waits for the backlog's commit, but the sender's next requests do not: a burst of world
  // messages then shares commits, and each online user gets the burst in one frame.
  // What its copies will add to the outbound queues stays reserved until they are counted there:
  // queued after SENT has left (which may wait behind an earlier reply) and sealed at the end of
  // that turn. Released sooner, a sender waiting for room saw the room empty while a whole
  // commit's copies were about to be sealed, and a reader's queue overran its limit.
  const release = comingOf(ctx).reserve(
    copyBytes(message) * Math.max(0, ctx.hub.onlineCount - 1),
  );
  const durable = new Completion();
  ctx.store.world.append(message).then(() => {
    ctx.metrics.messageIn(message);
    durable.resolve();
  }, (e) => {
    release(); // a failure is the reply: no copies follow
    durable.reject(e instanceof Error ? e : new Error(String(e)));
  });
  return {
    type: MsgType.SENT,
    body: { id: message.id, time: message.time },
    durable,
    // Once SENT has left: to everyone online but the sender.
    after: () => {
      try {
        ctx.hub.broadcast(message, session);
      } finally {
        // The channels seal in the same end-of-turn run; a waiting sender looks after all of it.
        afterTurn(release);
      }
    },
  };
}

function sendToUser(
  ctx: ServerContext,
  self: LoggedIn,
  message: ChatMessage,
  to: NamedUser,
): Reply | Promise<Reply> {
  // A script (a one-shot session) may write to its own user: a note to the person it runs for.
  if (to.user === self.user && !self.oneShot) {
    throw new ParleyError(ErrorCode.CANNOT_SELF, "You cannot send a message to yourself");
  }
  message.to = to.name;
  // Refused across a block rather than dropped: SENT always means stored (see refuseBlocked).
  const hidden = ctx.store.blocks.either(self.user);
  if (hidden instanceof Promise) {
    return hidden.then((h) =>
      h.has(to.user) ? refuse(ctx, self, to) : deliver(ctx, message, [to.user], null)
    );
  }
  if (hidden.has(to.user)) return refuse(ctx, self, to);
  return deliver(ctx, message, [to.user], null);
}

async function refuse(ctx: ServerContext, self: LoggedIn, to: NamedUser): Promise<never> {
  throw await blockedError(ctx, self, to);
}

async function sendToGroup(ctx: ServerContext, self: LoggedIn, message: ChatMessage, id: number) {
  const [group, members] = await Promise.all([
    ctx.store.groups.get(id),
    ctx.store.groups.members(id),
  ]);
  if (!group) throw new ParleyError(ErrorCode.NO_SUCH_GROUP, `There is no group ${id}`);
  if (!members.some((m) => m.user === self.user)) {
    throw new ParleyError(ErrorCode.NOT_A_MEMBER, `You are not a member of group ${id}`);
  }
  message.group = { id, name: group.name };
  // Members with a block between them and the sender are not recipients, either way round.
  const hidden = await ctx.store.blocks.either(self.user);
  const others = members.filter((m) => m.user !== self.user && !hidden.has(m.user));
  return await deliver(ctx, message, others.map((m) => m.user), others);
}

/**
 * Queues the message for its recipients and offers it to those online. Rows for online
 * recipients wait a moment before they are committed: most are acknowledged by then and never
 * written. SENT goes back once every copy is durable, committed or acknowledged by its
 * recipient's client.
 */
function deliver(
  ctx: ServerContext,
  message: ChatMessage,
  recipients: string[],
  /** Display names, for the skipped list of a group message. */
  members: readonly NamedUser[] | null,
): Reply | Promise<Reply> {
  const { queue } = ctx.config;
  const wait = ctx.sends.waitMs(usernameKey(message.from));
  if (wait > 0) {
    throw new ParleyError(
      ErrorCode.SENDING_TOO_FAST,
      `You sent more than ${queue.senderBytesPerMinute} bytes of messages in the last minute; try again in ${
        Math.ceil(wait / 1000)
      } s`,
    );
  }
  // Offered as the seqs are taken, so each recipient's pump gets them in seq order.
  const enqueued = ctx.store.inbox.enqueue(
    recipients,
    message,
    queue,
    ctx.hub.pumps,
    ctx.hub.offer,
  );
  if (enqueued instanceof Promise) return enqueued.then((e) => sent(ctx, message, e, members));
  return sent(ctx, message, enqueued, members);
}

function sent(
  ctx: ServerContext,
  message: ChatMessage,
  { full, capped, refused, cost, durable }: Enqueued,
  members: readonly NamedUser[] | null,
): Reply {
  if (refused) throw refusedError(ctx, refused);
  ctx.sends.charge(usernameKey(message.from), cost);
  if (message.to !== undefined && full.length > 0) {
    throw new ParleyError(
      ErrorCode.QUEUE_FULL,
      `${message.to} has too many undelivered messages; this one was not sent`,
    );
  }
  if (message.to !== undefined && capped.length > 0) {
    throw new ParleyError(
      ErrorCode.QUEUE_FULL,
      `${message.to} has too many undelivered messages from you; this one was not sent`,
    );
  }
  ctx.metrics.messageIn(message);
  const body: { [key: string]: Value } = { id: message.id, time: message.time };
  if (full.length > 0 || capped.length > 0) {
    body.skipped = [...full, ...capped].map((user) =>
      members?.find((m) => m.user === user)?.name ?? user
    );
  }
  return { type: MsgType.SENT, body, durable };
}

function refusedError(ctx: ServerContext, refused: QueueRefusal): ParleyError {
  const { queue } = ctx.config;
  if (refused === "store_full") {
    return new ParleyError(
      ErrorCode.STORE_FULL,
      "The server's store for undelivered messages is full; try again later",
    );
  }
  return new ParleyError(
    ErrorCode.OUTBOX_FULL,
    `Your undelivered messages take ${queue.maxSenderBytes} bytes, as much as one sender may; try again once they are delivered`,
  );
}

/** Cumulative: the client has every message up to `seq`. Answered only if malformed. */
export const ack: Handler<RequestBodyOf<typeof MsgType.ACK>> = (_ctx, session, seq) => {
  session.pump?.ack(seq);
  return null;
};
