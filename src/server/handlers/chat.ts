/**
 * SEND and ACK. A private or group message is durable in each recipient's inbox before SENT
 * goes back; it leaves the server only when the recipient acknowledges it. World messages go
 * to everyone online and into the bounded backlog.
 */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { utf8Length, type Value } from "../../protocol/value.ts";
import type { ChatMessage } from "../../store/types.ts";
import { type Handler, me, type ServerContext } from "../context.ts";
import { passBody } from "../delivery.ts";
import type { LoggedIn } from "../session.ts";
import { findUser } from "./friends.ts";

type SendBody = RequestBodyOf<typeof MsgType.SEND>;

/** Checks the content and builds the message (without its destination). */
function content(ctx: ServerContext, self: LoggedIn, body: SendBody): ChatMessage {
  const { limits } = ctx.config;
  const message: ChatMessage = { id: body.id, time: new Date(), from: self.name, kind: "text" };
  if (body.type === "text") {
    if (typeof body.data !== "string" || body.data.length === 0) {
      throw new ParleyError(ErrorCode.BAD_REQUEST, 'A "text" message carries a non-empty str');
    }
    const size = utf8Length(body.data);
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

export const send: Handler<SendBody> = async (ctx, session, body) => {
  const self = me(session);
  const targets = [body.target_username, body.group_id, body.world || undefined].filter((t) =>
    t !== undefined
  );
  if (targets.length !== 1) {
    throw new ParleyError(
      ErrorCode.BAD_REQUEST,
      "Give exactly one of target_username, group_id or world",
    );
  }
  const message = content(ctx, self, body);
  const sent = { id: message.id, time: message.time };

  if (body.world) {
    if (message.kind !== "text") {
      throw new ParleyError(
        ErrorCode.BAD_REQUEST,
        "The world room takes text; send images to friends or groups",
      );
    }
    message.world = true;
    await ctx.store.world.append(message);
    ctx.metrics.messageIn(message);
    return {
      type: MsgType.SENT,
      body: sent,
      after: () => {
        const pass = passBody(message, 0);
        for (const s of ctx.hub.sessions()) {
          if (s !== session && s.login) {
            s.push(MsgType.PASS, pass);
            ctx.metrics.messageOut(message);
          }
        }
      },
    };
  }

  let recipients: string[];
  const displayName = new Map<string, string>();
  if (body.target_username !== undefined) {
    const to = await findUser(ctx, body.target_username);
    if (to.user === self.user) {
      throw new ParleyError(ErrorCode.CANNOT_SELF, "You cannot send a message to yourself");
    }
    message.to = to.name;
    recipients = [to.user];
  } else {
    const id = body.group_id!;
    const [group, members] = await Promise.all([
      ctx.store.groups.get(id),
      ctx.store.groups.members(id),
    ]);
    if (!group) throw new ParleyError(ErrorCode.NO_SUCH_GROUP, `There is no group ${id}`);
    if (!members.some((m) => m.user === self.user)) {
      throw new ParleyError(ErrorCode.NOT_A_MEMBER, `You are not a member of group ${id}`);
    }
    message.group = { id, name: group.name };
    const others = members.filter((m) => m.user !== self.user);
    recipients = others.map((m) => m.user);
    for (const m of others) displayName.set(m.user, m.name);
  }

  // Rows for online recipients wait a moment before they are committed: most are
  // acknowledged by then and never written. SENT goes back once every copy is durable,
  // committed or acknowledged by its recipient's client.
  const { queued, full, durable } = await ctx.store.inbox.enqueue(
    recipients,
    message,
    ctx.config.queue,
    (user) => ctx.hub.sessionOf(user)?.pump != null,
  );
  // Offered right away, in seq order, so each recipient sees its messages in order.
  for (const [user, item] of queued) ctx.hub.sessionOf(user)?.pump?.offer(item);
  if (message.to !== undefined && full.length > 0) {
    throw new ParleyError(
      ErrorCode.QUEUE_FULL,
      `${message.to} has too many undelivered messages; this one was not sent`,
    );
  }
  ctx.metrics.messageIn(message);
  const reply: { [key: string]: Value } = { ...sent };
  if (full.length > 0) reply.skipped = full.map((user) => displayName.get(user) ?? user);
  return { type: MsgType.SENT, body: reply, durable };
};

/** Cumulative: the client has every message up to `seq`. Answered only if malformed. */
export const ack: Handler<RequestBodyOf<typeof MsgType.ACK>> = (_ctx, session, seq) => {
  session.pump?.ack(seq);
  return Promise.resolve(null);
};
