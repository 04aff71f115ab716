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
import type { Handler, ServerContext } from "./context.ts";
import * as accounts from "./handlers/accounts.ts";
import * as chat from "./handlers/chat.ts";
import * as files from "./handlers/files.ts";
import * as friends from "./handlers/friends.ts";
import * as groups from "./handlers/groups.ts";
import type { Session } from "./session.ts";

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

export async function dispatch(ctx: ServerContext, session: Session, msg: Message): Promise<void> {
  if (SILENT.has(msg.type) || session.closing) return;
  if (!UNMETERED.has(msg.type) && !session.bucket.take()) {
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
    return;
  }
  const route = ROUTES.get(msg.type);
  try {
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
    const body = schema.check(msg.body, "");
    const reply = await (route.handler as Handler<unknown>)(ctx, session, body);
    if (!reply) return;
    // What a reply causes (INITIALIZE after LG_OK, say) runs once the reply has left.
    const after = reply.after && (() => runAfter(ctx, session, msg, reply.after!));
    if (reply.durable) {
      // The next request goes ahead while this one waits; the answers keep their order.
      session.replyWhen(
        msg.id,
        reply.durable.then(
          () => ({ type: reply.type, body: reply.body, after }),
          (e) => failureReply(ctx, session, msg, e),
        ),
      );
      if (session.heldReplies >= MAX_HELD_REPLIES) await session.belowHeld(MAX_HELD_REPLIES);
      return;
    }
    if (session.reply(msg.id, reply.type, reply.body, after) && after) await after();
  } catch (e) {
    const { type, body } = failureReply(ctx, session, msg, e);
    session.reply(msg.id, type, body);
  }
}

/** The failure response to `msg`: its type's failure message with a code and a sentence. */
function failureReply(ctx: ServerContext, session: Session, msg: Message, e: unknown) {
  const type = failureTypeOf(msg.type);
  const failure = errorBody(ctx, session, msg, e);
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
export function errorBody(ctx: ServerContext, session: Session, msg: Message, e: unknown) {
  if (e instanceof ParleyError) return { code: e.code, message: e.message };
  if (e instanceof SchemaError) {
    return {
      code: ErrorCode.BAD_REQUEST,
      message: `Bad ${msgTypeName(msg.type)} request: ${e.message}`,
    };
  }
  ctx.log.error("handler.failed", {
    type: msgTypeName(msg.type),
    session: session.id,
    error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
  });
  return { code: ErrorCode.INTERNAL, message: "The server failed to handle this request" };
}
