/**
 * Routes a decoded request to its handler: schema check, login check, then the handler.
 * Every error a handler throws ends here and becomes exactly one reply; nothing else replies.
 */

import { ErrorCode, ParleyError, SchemaError } from "../protocol/errors.ts";
import type { Message } from "../protocol/message_codec.ts";
import {
  failureTypeOf,
  MsgType,
  msgTypeName,
  RequestBody,
  type RequestType,
  STATUS_TYPES,
} from "../protocol/messages.ts";
import type { Schema } from "../protocol/schema.ts";
import type { CompletionListener } from "../store/completion.ts";
import type { Handler, Reply, ServerContext } from "./context.ts";
import * as accounts from "./handlers/accounts.ts";
import * as chat from "./handlers/chat.ts";
import * as files from "./handlers/files.ts";
import * as friends from "./handlers/friends.ts";
import * as groups from "./handlers/groups.ts";
import { HeldReply, type Session } from "./session.ts";

interface Route {
  handler: Handler<never>;
  /** Allowed before login. */
  open: boolean;
}

const ROUTES = new Map<number, Route>([
  [MsgType.REGISTER, { handler: accounts.register, open: true }],
  [MsgType.LOGIN, { handler: accounts.login, open: true }],
  [MsgType.RESUME, { handler: accounts.resume, open: true }],
  [MsgType.PING, { handler: accounts.ping, open: true }],
  [MsgType.LOGOUT, { handler: accounts.logout, open: false }],
  [MsgType.CHANGE_PASSWORD, { handler: accounts.changePassword, open: false }],
  [MsgType.ADD_FRIEND, { handler: friends.addFriend, open: false }],
  [MsgType.REMOVE_FRIEND, { handler: friends.removeFriend, open: false }],
  [MsgType.LIST_FRIENDS, { handler: friends.listFriends, open: false }],
  [MsgType.WHO, { handler: friends.who, open: false }],
  [MsgType.FIND_USER, { handler: friends.findUserRequest, open: false }],
  [MsgType.CREATE_G, { handler: groups.createGroup, open: false }],
  [MsgType.INVITE, { handler: groups.invite, open: false }],
  [MsgType.QUERY_MEMBER, { handler: groups.queryMembers, open: false }],
  [MsgType.LEAVE_G, { handler: groups.leaveGroup, open: false }],
  [MsgType.LIST_GROUPS, { handler: groups.listGroups, open: false }],
  [MsgType.SEND, { handler: chat.send, open: false }],
  [MsgType.ACK, { handler: chat.ack, open: false }],
  [MsgType.FILE_OFFER, { handler: files.offer, open: false }],
  [MsgType.FILE_ANSWER, { handler: files.answer, open: false }],
  [MsgType.FILE_CHUNK, { handler: files.chunk, open: false }],
  [MsgType.FILE_ACK, { handler: files.ack, open: false }],
  [MsgType.FILE_CANCEL, { handler: files.cancel, open: false }],
]);

/** Message types a client may send that need no answer: PONG, a reply to a PING from the server. */
const SILENT = new Set<number>([MsgType.PONG]);

/**
 * Requests of one connection whose answers may wait for durability at once. Past this the
 * connection's next request waits, so a client cannot pile up unbounded pending work.
 */
const MAX_HELD_REPLIES = 1024;

/** Flow-controlled traffic that the request bucket does not meter. */
const UNMETERED = new Set<number>([MsgType.ACK, MsgType.FILE_CHUNK, MsgType.FILE_ACK]);

/**
 * Handles one request. Returns a promise only when the connection's next request has to wait
 * (a handler that has to read the store first, or too many answers held): most requests are
 * answered without one, and this runs for every message.
 */
export function dispatch(
  ctx: ServerContext,
  session: Session,
  msg: Message,
): Promise<void> | undefined {
  if (SILENT.has(msg.type) || session.closing) return;
  if (!UNMETERED.has(msg.type) && !session.bucket.take()) {
    refuseFlood(ctx, session, msg);
    return;
  }
  let result: Reply | null | Promise<Reply | null>;
  try {
    const route = ROUTES.get(msg.type);
    if (!route) {
      throw new ParleyError(
        ErrorCode.UNKNOWN_TYPE,
        `Message type ${msg.type} (${msgTypeName(msg.type)}) is not a request this server handles`,
      );
    }
    if (!route.open && !session.login) {
      throw new ParleyError(
        ErrorCode.NOT_LOGGED_IN,
        `Log in before sending ${msgTypeName(msg.type)}`,
      );
    }
    const schema = RequestBody[msg.type as RequestType] as Schema<unknown>;
    const body = schema.check(msg.body);
    result = (route.handler as Handler<unknown>)(ctx, session, body);
  } catch (e) {
    replyFailure(ctx, session, msg, e);
    return;
  }
  if (result instanceof Promise) {
    return result.then(
      (reply) => answer(ctx, session, msg, reply),
      (e) => replyFailure(ctx, session, msg, e),
    );
  }
  return answer(ctx, session, msg, result);
}

/** The rate limit: a failure reply, or for a client that keeps on, disconnection. */
function refuseFlood(ctx: ServerContext, session: Session, msg: Message): void {
  ctx.metrics.rateLimited();
  const { requestRate, requestBurst } = ctx.config.limits;
  if (session.bucket.strikes > requestBurst) {
    ctx.log.warn("session.flooding", {
      session: session.id,
      user: session.login?.user,
      peer: session.ip,
    });
    void session.closeWith(MsgType.GENERAL_ERROR, {
      code: ErrorCode.RATE_LIMITED,
      message: "Disconnected for sending too many requests",
    }, 500);
    return;
  }
  const type = failureTypeOf(msg.type);
  const failure = {
    code: ErrorCode.RATE_LIMITED,
    message: `Too many requests; the limit is ${requestRate} a second`,
  };
  session.reply(msg.id, type, STATUS_TYPES.has(type) ? { success: false, ...failure } : failure);
}

/** Sends a handler's reply, or holds a place for it until what it waits for is durable. */
function answer(
  ctx: ServerContext,
  session: Session,
  msg: Message,
  reply: Reply | null,
): Promise<void> | undefined {
  if (!reply) return;
  try {
    // What a reply causes (INITIALIZE after LG_OK, say) runs once the reply has left.
    const after = reply.after && (() => runAfter(ctx, session, msg, reply.after!));
    if (reply.durable) {
      // The next request goes ahead while this one waits; the answers keep their order.
      reply.durable.listen(new DurableReply(ctx, session, msg.type, msg.id, reply, after));
      if (session.heldReplies >= MAX_HELD_REPLIES) return session.belowHeld(MAX_HELD_REPLIES);
      return;
    }
    if (session.reply(msg.id, reply.type, reply.body, after) && after) return after();
  } catch (e) {
    replyFailure(ctx, session, msg, e);
  }
}

/**
 * A reply that waits for its request's writes: sent once they are durable, a failure if not. It
 * is its own place in the session's queue of replies, and it keeps the request's type and id,
 * not the request: under load tens of thousands wait at once, and young-generation collections
 * copy whatever each of them holds.
 */
class DurableReply extends HeldReply implements CompletionListener {
  constructor(
    private readonly ctx: ServerContext,
    private readonly session: Session,
    private readonly requestType: number,
    id: number,
    reply: Reply,
    after: (() => Promise<void>) | undefined,
  ) {
    super(id);
    // Not ready: the answer is kept here until the writes settle.
    this.type = reply.type;
    this.body = reply.body;
    this.after = after;
    session.hold(this);
  }

  settled(error: Error | null): void {
    if (error === null) {
      this.session.fill(this, this.type, this.body, this.after);
      return;
    }
    const { type, body } = failureReply(this.ctx, this.session, this.requestType, error);
    this.session.fill(this, type, body);
  }
}

function replyFailure(ctx: ServerContext, session: Session, msg: Message, e: unknown): void {
  const { type, body } = failureReply(ctx, session, msg.type, e);
  session.reply(msg.id, type, body);
}

/** The failure response to a request of `requestType`: a code and a sentence. */
function failureReply(ctx: ServerContext, session: Session, requestType: number, e: unknown) {
  const type = failureTypeOf(requestType);
  const failure = errorBody(ctx, session, requestType, e);
  ctx.metrics.requestFailed(failure.code);
  return { type, body: STATUS_TYPES.has(type) ? { success: false, ...failure } : failure };
}

/** Follow-ups of a reply already sent: a failure there is logged, never a second reply. */
async function runAfter(
  ctx: ServerContext,
  session: Session,
  msg: Message,
  after: () => void | Promise<void>,
): Promise<void> {
  try {
    await after();
  } catch (e) {
    ctx.log.error("handler.after_failed", {
      type: msgTypeName(msg.type),
      session: session.id,
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
  }
}

/** The `{code, message}` body for a failure; unexpected errors are logged, not exposed. */
export function errorBody(ctx: ServerContext, session: Session, requestType: number, e: unknown) {
  if (e instanceof ParleyError) return { code: e.code, message: e.message };
  if (e instanceof SchemaError) {
    return {
      code: ErrorCode.BAD_REQUEST,
      message: `Bad ${msgTypeName(requestType)} request: ${e.message}`,
    };
  }
  ctx.log.error("handler.failed", {
    type: msgTypeName(requestType),
    session: session.id,
    error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
  });
  return { code: ErrorCode.INTERNAL, message: "The server failed to handle this request" };
}
