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
  [MsgType.BLOCK, { handler: friends.block, open: false }],
  [MsgType.UNBLOCK, { handler: friends.unblock, open: false }],
  [MsgType.LIST_BLOCKS, { handler: friends.listBlocks, open: false }],
  [MsgType.JOIN_G, { handler: groups.joinGroup, open: false }],
  [MsgType.DECLINE_G, { handler: groups.declineGroup, open: false }],
]);

/**
 * What a one-shot session may not do: its user's inbox, transfers and other sessions belong to
 * the user's interactive session, which a script must not disturb.
 */
const INTERACTIVE_ONLY = new Set<number>([
  MsgType.ACK,
  MsgType.CHANGE_PASSWORD,
  MsgType.FILE_OFFER,
  MsgType.FILE_ANSWER,
  MsgType.FILE_CHUNK,
  MsgType.FILE_ACK,
  MsgType.FILE_CANCEL,
]);

/** Message types a client may send that need no answer: PONG, a reply to a PING from the server. */
const SILENT = new Set<number>([MsgType.PONG]);

/**
 * Traffic paced by the peer's own: acknowledgements of what it received, file data within the
 * transfer window, answers to the server's PINGs. Metered by the session's flow bucket, which is
 * FLOW_BUDGET_FACTOR times as generous as the request bucket, not left unmetered: a flood of
 * malformed ACKs once went on unchecked.
 */
const FLOW = new Set<number>([MsgType.ACK, MsgType.FILE_CHUNK, MsgType.FILE_ACK, MsgType.PONG]);
/** 20 × 100 a second carries 2000 ACKs or 125 MiB of 64 KiB chunks a second. */
export const FLOW_BUDGET_FACTOR = 20;

/**
 * Values decoded from one frame at most: the work a frame can cost before any limit applies.
 * A 4 MiB dict of 419k keys took 510 ms to decode; 16,384 values take about 20 ms. The
 * reference client packs at most 32 KiB per frame (at most 6554 values), and a CREATE_G of
 * the largest group allowed fits (config.ts keeps `limits.maxGroupMembers` below it).
 */
export const MAX_FRAME_VALUES = 16_384;

/**
 * A message costs one token per VALUES_PER_TOKEN values of its body, started (one for any
 * ordinary request): decoding is paid by what it cost, so a bucket of 100 a second pays for
 * at most 6400 values a second, a few milliseconds of CPU.
 */
export const VALUES_PER_TOKEN = 64;

/** The tokens a message of `values` values costs. */
export function messageCost(values: number): number {
  return values <= VALUES_PER_TOKEN ? 1 : Math.ceil(values / VALUES_PER_TOKEN);
}

/**
 * Handles one message. Returns a promise only when the connection's next message has to wait
 * (a handler that has to read the store first, or too many answers held): most requests are
 * answered without one, and this runs for every message.
 */
export function dispatch(
  ctx: ServerContext,
  session: Session,
  msg: Message,
  values = 1,
): Promise<void> | undefined {
  if (session.closing) return;
  // A refusal is a reply too, and may wait behind a held one.
  if (!admit(ctx, session, msg.type, msg.id, values)) return session.roomForReplies();
  if (SILENT.has(msg.type)) return;
  const waiting = handle(ctx, session, msg);
  if (waiting) return waiting.then(() => session.roomForReplies());
  return session.roomForReplies();
}

/**
 * A malformed message (section 5.4): it costs tokens like any other, gets BAD_REQUEST, and
 * closes the connection if it is not logged in (no client that works sends one).
 */
export function dispatchMalformed(
  ctx: ServerContext,
  session: Session,
  error: { id: number; cause: Error },
  values = 1,
): Promise<void> | undefined {
  if (session.closing) return;
  if (!admit(ctx, session, MsgType.GENERAL_ERROR, error.id, values)) {
    return session.roomForReplies();
  }
  ctx.metrics.requestFailed(ErrorCode.BAD_REQUEST);
  const anonymous = session.stranger;
  session.reply(error.id, MsgType.GENERAL_ERROR, {
    code: ErrorCode.BAD_REQUEST,
    message: `Malformed message: ${error.cause.message}${anonymous ? CLOSING : ""}`,
  });
  if (anonymous) return void closeAnonymous(ctx, session, "malformed");
  return session.roomForReplies();
}

const CLOSING = "; closing the connection";

/** How long a connection that is being closed for misbehaving gets for the last answers to leave. */
const MISBEHAVING_FLUSH_MS = 500;

function closeAnonymous(ctx: ServerContext, session: Session, why: string): Promise<void> {
  ctx.log.info("session.misbehaved", { session: session.id, peer: session.ip, why });
  return session.closeWith(null, null, MISBEHAVING_FLUSH_MS);
}

/**
 * The rate limits: true if `session` may have this message handled. Before login every message
 * draws on the small pre-login bucket; after, flow traffic on the flow bucket and the rest on
 * the request bucket. A refused request gets RATE_LIMITED in its failure type. A connection
 * that is not logged in is closed at its first refusal; a logged-in one once its refusals
 * within the flood window pass the burst: that refusal is answered, then the notice goes, then
 * the close, and nothing after it is read.
 */
function admit(
  ctx: ServerContext,
  session: Session,
  type: number,
  id: number,
  values: number,
): boolean {
  const { buckets } = session;
  const bucket = session.stranger
    ? buckets.preLogin
    : FLOW.has(type)
    ? buckets.flow
    : buckets.requests;
  if (bucket.take(messageCost(values))) return true;
  ctx.metrics.rateLimited();
  if (!SILENT.has(type)) {
    const failureType = failureTypeOf(type);
    const failure = {
      code: ErrorCode.RATE_LIMITED,
      message: bucket === buckets.preLogin
        ? "Too many messages before login"
        : `Too many requests; the limit is ${rateOf(ctx, bucket === buckets.flow)} a second`,
    };
    session.reply(
      id,
      failureType,
      STATUS_TYPES.has(failureType) ? { success: false, ...failure } : failure,
    );
  }
  if (session.stranger || bucket.flooding) {
    ctx.log.warn("session.flooding", {
      session: session.id,
      user: session.login?.user,
      peer: session.ip,
    });
    void session.closeWith(MsgType.GENERAL_ERROR, {
      code: ErrorCode.RATE_LIMITED,
      message: "Disconnected for sending too many requests",
    }, MISBEHAVING_FLUSH_MS);
  }
  return false;
}

function rateOf(ctx: ServerContext, flow: boolean): number {
  return ctx.config.limits.requestRate * (flow ? FLOW_BUDGET_FACTOR : 1);
}

/** Routes an admitted request to its handler. */
function handle(ctx: ServerContext, session: Session, msg: Message): Promise<void> | undefined {
  let route: Route | undefined;
  let body: unknown;
  try {
    route = ROUTES.get(msg.type);
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
    body = schema.check(msg.body);
    if (session.login?.oneShot && INTERACTIVE_ONLY.has(msg.type)) {
      throw new ParleyError(
        ErrorCode.NOT_INTERACTIVE,
        `A one-shot session cannot send ${msgTypeName(msg.type)}`,
      );
    }
  } catch (e) {
    // A request that no working client sends before login: answered, then the connection goes.
    const anonymous = session.stranger;
    if (anonymous && e instanceof Error) e.message += CLOSING;
    replyFailure(ctx, session, msg, e);
    if (anonymous) void closeAnonymous(ctx, session, msgTypeName(msg.type));
    return;
  }
  let result: Reply | null | Promise<Reply | null>;
  try {
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

export const STORE_UNAVAILABLE =
  "The server's storage did not answer in time (a cluster failing over?); try again in a few seconds";

/** The `{code, message}` body for a failure; unexpected errors are logged, not exposed. */
export function errorBody(ctx: ServerContext, session: Session, requestType: number, e: unknown) {
  if (e instanceof ParleyError) return { code: e.code, message: e.message };
  if (e instanceof SchemaError) {
    return {
      code: ErrorCode.BAD_REQUEST,
      message: `Bad ${msgTypeName(requestType)} request: ${e.message}`,
    };
  }
  if (ctx.store.unavailable?.(e)) {
    // Expected while a cluster fails over: a warning, and a reason the user can act on.
    ctx.log.warn("handler.store_unavailable", {
      type: msgTypeName(requestType),
      session: session.id,
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
    return { code: ErrorCode.INTERNAL, message: STORE_UNAVAILABLE };
  }
  ctx.log.error("handler.failed", {
    type: msgTypeName(requestType),
    session: session.id,
    error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
  });
  return { code: ErrorCode.INTERNAL, message: "The server failed to handle this request" };
}
