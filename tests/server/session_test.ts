/** Session: responses leave in request order, whatever order their answers come in. */

import assert from "node:assert/strict";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import { HeldReply, Session } from "../../src/server/session.ts";
import { TokenBucket } from "../../src/server/throttle.ts";
import type { Channel } from "../../src/transport/channel.ts";

function buckets() {
  return {
    requests: new TokenBucket(100, 100),
    flow: new TokenBucket(100, 100),
    preLogin: new TokenBucket(100, 100),
  };
}

/** A channel that records what is sent and refuses the body "unsendable". */
function fakeChannel(sent: { type: number; id: number; body: Value }[]): Channel {
  return {
    closed: false,
    send(type: number, id: number, body: Value) {
      if (body === "unsendable") throw new RangeError("Message exceeds the frame limit");
      sent.push({ type, id, body });
    },
  } as unknown as Channel;
}

Deno.test("held replies leave in request order, and one that cannot be sent holds up nothing", () => {
  const printed: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    const sent: { type: number; id: number; body: Value }[] = [];
    const session = new Session(fakeChannel(sent), "127.0.0.1", buckets());
    const first = session.hold(new HeldReply(1));
    const second = session.hold(new HeldReply(2));
    const afters: number[] = [];
    assert.equal(session.reply(3, MsgType.PONG, "three", () => afters.push(3)), false);
    session.fill(second, MsgType.SENT, "two", () => afters.push(2));
    assert.equal(sent.length, 0, "nothing leaves before the first answer");
    session.fill(first, MsgType.SENT, "unsendable", () => afters.push(1));
    assert.deepEqual(sent.map((m) => m.id), [1, 2, 3]);
    assert.equal(sent[0].type, MsgType.GENERAL_ERROR, "the unsendable reply becomes an error");
    assert.deepEqual(sent.slice(1).map((m) => m.body), ["two", "three"]);
    assert.deepEqual(afters, [2, 3], "what follows a reply runs only for replies that left");
    assert.equal(session.heldReplies, 0);
    assert.equal(printed.length, 1);
    // With nothing held, a reply leaves at once.
    assert.equal(session.reply(4, MsgType.PONG, "four"), true);
    assert.equal(sent.at(-1)!.id, 4);
  } finally {
    console.error = original;
  }
});
