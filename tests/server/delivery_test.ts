/**
 * Durable delivery while requests overlap: a SEND waits for durability without holding up the
 * connection, responses keep request order, and a copy for an online recipient is either
 * acknowledged or written to disk, never lost in between.
 */

import assert from "node:assert/strict";
import { newMessageId, ParleyClient } from "../../src/client/client.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import type { Message } from "../../src/protocol/message_codec.ts";
import { MsgType, msgTypeName } from "../../src/protocol/messages.ts";
import { type TestServer, withServer } from "../helpers/server.ts";
import { body, passes } from "../helpers/content.ts";
import { RawClient } from "../helpers/raw.ts";

/** A logged-in client that never acknowledges (its messages stay owed). */
async function silentUser(t: TestServer, name: string): Promise<ParleyClient> {
  const c = await ParleyClient.connect({
    host: "127.0.0.1",
    port: t.port,
    knownHosts: t.knownHosts,
    autoAck: false,
  });
  t.clients.push(c);
  await c.register(name, "password-" + name);
  await c.login(name, "password-" + name);
  return c;
}

function sendBody(to: string, text: string) {
  return { id: newMessageId(), target_username: to, type: "text", data: text };
}

Deno.test("pipelined requests are answered in request order while SENDs wait to be durable", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    await silentUser(t, "bob"); // online, never acknowledges: his copies must be written
    const order: string[] = [];
    const track = (name: string, p: Promise<Message>) =>
      p.then((m) => {
        order.push(`${name}:${m.type}`);
        return m;
      });
    // Issued in one tick, so they travel in one frame.
    const all = [
      track("send1", alice.request(MsgType.SEND, sendBody("bob", "one"))),
      track("ping", alice.request(MsgType.PING, null)),
      track("send2", alice.request(MsgType.SEND, sendBody("bob", "two"))),
      track("bad", alice.request(MsgType.SEND, sendBody("nobody", "three"))),
      track("friends", alice.request(MsgType.LIST_FRIENDS, null)),
    ];
    await Promise.all(all);
    assert.deepEqual(order, [
      `send1:${MsgType.SENT}`,
      `ping:${MsgType.PONG}`,
      `send2:${MsgType.SENT}`,
      `bad:${MsgType.GENERAL_ERROR}`,
      `friends:${MsgType.FRIEND_LIST}`,
    ]);
    assert.equal(body(await all[3]).code, ErrorCode.NO_SUCH_USER);
  }));

Deno.test("a message to an online recipient who has not acknowledged it survives a restart", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await silentUser(t, "bob");
    const sent = await alice.sendText({ user: "bob" }, "keep me");
    assert.equal((await passes(bob, 1))[0].data, "keep me");
    await t.restart();
    const back = await t.connect();
    await back.login("bob", "password-bob");
    assert.equal(body(await back.nextEvent(MsgType.INITIALIZE)).pending, 1);
    const [again] = await passes(back, 1);
    assert.deepEqual(again.id, sent.id);
    assert.equal(again.data, "keep me");
  }));

Deno.test("messages acknowledged by an online recipient are gone after a restart", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    for (let i = 0; i < 20; i++) await alice.sendText({ user: "bob" }, `m${i}`);
    assert.equal((await passes(bob, 20)).length, 20);
    await bob.ping(); // his ACKs went out before this round trip
    await t.restart();
    const back = await t.connect();
    await back.login("bob", "password-bob");
    assert.equal(body(await back.nextEvent(MsgType.INITIALIZE)).pending, 0);
  }));

Deno.test("1500 SENDs pipelined on one connection all arrive once, in order, each with its SENT", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const n = 1500;
    const sends = Array.from({ length: n }, (_, i) => alice.sendText({ user: "bob" }, `m${i}`));
    const got = await passes(bob, n);
    assert.deepEqual(got.map((p) => p.data), Array.from({ length: n }, (_, i) => `m${i}`));
    const receipts = await Promise.all(sends);
    assert.deepEqual(receipts.map((r) => r.id), got.map((p) => p.id));
    const seqs = got.map((p) => p.seq as number);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]));
  }));

Deno.test("INITIALIZE follows LG_OK even when LG_OK waits behind a SENT", () =>
  withServer(async (t) => {
    for (const name of ["alice", "bob"]) {
      await (await t.connect()).register(name, `password-${name}`);
    }
    await silentUser(t, "carol"); // online, never acknowledges: alice's copy must be written
    const raw = await RawClient.connect(t.port);
    await raw.send(raw.frame([{ type: MsgType.LOGIN, id: 1, body: ["alice", "password-alice"] }]));
    while (!(await raw.receive())!.some((m) => m.type === MsgType.INITIALIZE)) { /* next frame */ }
    // Switch accounts in one frame: SEND, LOGOUT, LOGIN.
    await raw.send(raw.frame([
      { type: MsgType.SEND, id: 2, body: sendBody("carol", "hi") },
      { type: MsgType.LOGOUT, id: 3, body: null },
      { type: MsgType.LOGIN, id: 4, body: ["bob", "password-bob"] },
    ]));
    const seen: string[] = [];
    while (!seen.includes(`INITIALIZE#0`)) {
      const frame = await raw.receive();
      if (!frame) break;
      for (const m of frame) seen.push(`${msgTypeName(m.type)}#${m.id}`);
    }
    assert.deepEqual(seen, ["SENT#2", "OK#3", "LG_OK#4", "INITIALIZE#0"]);
    raw.close();
  }));
