/** FILE_OFFER, FILE_ANSWER, FILE_CHUNK, FILE_ACK and FILE_CANCEL, over the file relay. */

import { ErrorCode, ParleyError } from "../../protocol/errors.ts";
import { MsgType, type RequestBodyOf } from "../../protocol/messages.ts";
import { type Handler, me } from "../context.ts";
import { findUser, refuseBlocked } from "./friends.ts";

export const offer: Handler<RequestBodyOf<typeof MsgType.FILE_OFFER>> = async (
  ctx,
  session,
  body,
) => {
  const self = me(session);
  const to = await findUser(ctx, body.target_username);
  if (to.user === self.user) {
    throw new ParleyError(ErrorCode.CANNOT_SELF, "You cannot send a file to yourself");
  }
  await refuseBlocked(ctx, self, to);
  const t = ctx.files.offer(
    { user: self.user, name: self.name },
    to,
    body.name,
    body.size,
    body.sha256,
  );
  return {
    type: MsgType.FILE_OFFERED,
    body: {
      transfer_id: t.id,
      chunk_bytes: ctx.files.limits.chunkBytes,
      window: ctx.files.limits.window,
    },
  };
};

export const answer: Handler<RequestBodyOf<typeof MsgType.FILE_ANSWER>> = async (
  ctx,
  session,
  body,
) => {
  await ctx.files.answer(body.transfer_id, me(session).user, body.accept);
  return { type: MsgType.OK, body: { transfer_id: body.transfer_id } };
};

/** Answered only on failure: the receiver's FILE_ACK is the acknowledgement. */
export const chunk: Handler<RequestBodyOf<typeof MsgType.FILE_CHUNK>> = (ctx, session, body) => {
  ctx.files.chunk(body.transfer_id, me(session).user, body.offset, body.data);
  ctx.metrics.fileChunk(body.data.length);
  return Promise.resolve(null);
};

/** Answered only on failure; relayed to the sender as FILE_PROGRESS. */
export const ack: Handler<RequestBodyOf<typeof MsgType.FILE_ACK>> = async (ctx, session, body) => {
  await ctx.files.ack(body.transfer_id, me(session).user, body.received, body.sha256_ok);
  return null;
};

export const cancel: Handler<RequestBodyOf<typeof MsgType.FILE_CANCEL>> = async (
  ctx,
  session,
  body,
) => {
  await ctx.files.cancel(body.transfer_id, me(session).user, body.reason ?? "");
  return { type: MsgType.OK, body: { transfer_id: body.transfer_id } };
};
