/** Session: responses leave in request order, whatever order their answers come in. */

import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock/clock.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import {
  HeldReply,
  MAX_HELD_REPLIES,
  MAX_HELD_REPLY_BYTES,
  Session,
} from "../../src/server/session.ts";
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

Deno.test("held replies are bounded in count and in bytes; room comes back as they leave", async () => {
  const sent: { type: number; id: number; body: Value }[] = [];
  const session = new Session(fakeChannel(sent), "127.0.0.1", buckets());
  const first = session.hold(new HeldReply(1));
  // Big echoes behind a reply still waited for: about 100 KiB each.
  const big = new Uint8Array(100 * 1024);
  let id = 2;
  while (session.roomForReplies() === undefined) session.reply(id++, MsgType.PONG, big);
  assert.equal(id - 2, Math.ceil(MAX_HELD_REPLY_BYTES / (big.length + 5)), "stops at 1 MiB");
  assert.ok(session.heldBytes >= MAX_HELD_REPLY_BYTES);
  const room = session.roomForReplies()!;
  session.fill(first, MsgType.SENT, null);
  await room;
  assert.equal(session.heldReplies, 0);
  assert.equal(session.heldBytes, 0);
  assert.equal(sent.length, id - 1);
  // And by count: small replies stop at MAX_HELD_REPLIES.
  const again = session.hold(new HeldReply(id++));
  while (session.roomForReplies() === undefined) session.reply(id++, MsgType.PONG, null);
  assert.equal(session.heldReplies, MAX_HELD_REPLIES);
  session.fill(again, MsgType.SENT, null);
  assert.equal(session.roomForReplies(), undefined);
});

Deno.test("a closing notice comes after the replies still waited for, or after waitMs ahead of them", async () => {
  const sent: { type: number; id: number; body: Value }[] = [];
  const channel = fakeChannel(sent) as unknown as { finish: () => Promise<void> };
  let finished = 0;
  channel.finish = () => {
    finished++;
    return Promise.resolve();
  };
  const session = new Session(channel as unknown as Channel, "127.0.0.1", buckets());
  const slot = session.hold(new HeldReply(1));
  const closing = session.closeWith(MsgType.GENERAL_ERROR, "bye", 1000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sent.length, 0, "the notice waits for the SENT before it");
  session.fill(slot, MsgType.SENT, "sent");
  await closing;
  assert.deepEqual(sent.map((m) => [m.id, m.body]), [[1, "sent"], [0, "bye"]]);
  assert.equal(finished, 1);
  // A reply that never comes holds the notice back for waitMs only, on the session's clock: a
  // minute that passes on the clock alone.
  const clock = new ManualClock();
  const stuck = new Session(channel as unknown as Channel, "127.0.0.1", buckets(), clock);
  stuck.hold(new HeldReply(2));
  let closed = false;
  const closingStuck = stuck.closeWith(MsgType.GENERAL_ERROR, "bye too", 60_000).then(() => {
    closed = true;
  });
  clock.advance(59_999);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(closed, false, "not before waitMs");
  assert.equal(sent.at(-1)?.body, "bye", "the notice waits");
  clock.advance(1);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    closingStuck,
    new Promise((_, reject) =>
      timer = setTimeout(() => reject(new Error("still waiting once waitMs had passed")), 5000)
    ),
  ]).finally(() => clearTimeout(timer));
  assert.deepEqual(sent.at(-1), { type: MsgType.GENERAL_ERROR, id: 0, body: "bye too" });
});
