/** Friends, groups, private/group/world messages and presence, with several real clients. */

import assert from "node:assert/strict";
import { ParleyClient } from "../../src/client/client.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import { befriend } from "../helpers/friends.ts";
import { withServer } from "../helpers/server.ts";
import { rejects } from "../helpers/assert.ts";
import { type Body, body, passes } from "../helpers/content.ts";

Deno.test("ADD_FRIEND asks; the other side's ADD_FRIEND makes both friends, each told", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("Bob");
    // A request shows no presence until it is answered.
    const asked = await alice.addFriend("bob");
    assert.deepEqual(asked, { success: true, username: "Bob", online: false, pending: true });
    assert.deepEqual(body(await bob.nextEvent(MsgType.FRIEND_REQUEST)), { username: "alice" });
    assert.deepEqual(await alice.friends(), []);
    const status = await bob.addFriend("ALICE");
    assert.deepEqual(status, { success: true, username: "alice", online: true });
    assert.deepEqual(body(await alice.nextEvent(MsgType.NEW_FRIEND)), {
      username: "Bob",
      online: true,
    });
    assert.deepEqual(await alice.friends(), [{ username: "Bob", online: true }]);
    assert.deepEqual(await bob.friends(), [{ username: "alice", online: true }]);
  }));

Deno.test("ADD_FRIEND fails for self, unknown users and existing friends with STATUS_ADD_FRIEND", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    await t.user("bob");
    await rejects(alice.addFriend("ALICE"), ErrorCode.CANNOT_SELF);
    await rejects(alice.addFriend("nobody"), ErrorCode.NO_SUCH_USER);
    await befriend(alice, "alice", t.clients[1], "bob");
    const reply = await alice.request(MsgType.ADD_FRIEND, "bob");
    assert.equal(reply.type, MsgType.STATUS_ADD_FRIEND);
    assert.equal(body(reply).success, false);
    assert.equal(body(reply).code, ErrorCode.ALREADY_FRIENDS);
    assert.match(body(reply).message as string, /already your friend/);
  }));

Deno.test("REMOVE_FRIEND ends the friendship both ways and tells the other side", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await befriend(alice, "alice", bob, "bob");
    await alice.removeFriend("bob");
    assert.deepEqual(body(await bob.nextEvent(MsgType.FRIEND_REMOVED)), { username: "alice" });
    assert.deepEqual(await alice.friends(), []);
    assert.deepEqual(await bob.friends(), []);
    await rejects(alice.removeFriend("bob"), ErrorCode.NOT_FRIENDS);
  }));

Deno.test("a private message is acknowledged with SENT and arrives as PASS, multi-line intact", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const text = "first line\nsecond line\n\n  indented — ünïcödé 🎉";
    const sent = await alice.sendText({ user: "BOB" }, text);
    assert.equal(sent.id.length, 16);
    assert.ok(Math.abs(sent.time.getTime() - Date.now()) < 5000);
    const [pass] = await passes(bob, 1);
    assert.deepEqual(pass.id, sent.id);
    assert.deepEqual(pass.time, sent.time);
    assert.equal(pass.source_username, "alice");
    assert.equal(pass.target_username, "bob");
    assert.equal(pass.type, "text");
    assert.equal(pass.data, text);
    assert.ok((pass.seq as number) > 0);
    await rejects(alice.sendText({ user: "nobody" }, "hi"), ErrorCode.NO_SUCH_USER);
    await rejects(alice.sendText({ user: "alice" }, "hi"), ErrorCode.CANNOT_SELF);
  }));

Deno.test("messages to an offline user wait, arrive in order at login, and go once acknowledged", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await bob.logout();
    const ids = [];
    for (let i = 1; i <= 5; i++) ids.push((await alice.sendText({ user: "bob" }, `m${i}`)).id);
    const back = await t.connect();
    await back.login("bob", "password-bob");
    const init = body(await back.nextEvent(MsgType.INITIALIZE));
    assert.equal(init.pending, 5);
    const got = await passes(back, 5);
    assert.deepEqual(got.map((p) => p.data), ["m1", "m2", "m3", "m4", "m5"]);
    assert.deepEqual(got.map((p) => p.id), ids);
    await back.ping(); // the ACK went out before this round trip
    await back.logout();
    const again = await t.connect();
    await again.login("bob", "password-bob");
    assert.equal(body(await again.nextEvent(MsgType.INITIALIZE)).pending, 0);
  }));

Deno.test("unacknowledged messages are delivered again; the client library drops the duplicates", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    await t.user("bob");
    await t.clients[1].logout();
    await alice.sendText({ user: "bob" }, "one");
    await alice.sendText({ user: "bob" }, "two");
    // Bob reads both but his client dies before acknowledging.
    const opts = { host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts };
    const first = await ParleyClient.connect({ ...opts, autoAck: false });
    t.clients.push(first);
    await first.login("bob", "password-bob");
    await passes(first, 2);
    first.close();
    await first.closed;
    // Redelivered to a fresh connection...
    const raw = await t.connect();
    await raw.login("bob", "password-bob");
    assert.equal(body(await raw.nextEvent(MsgType.INITIALIZE)).pending, 2);
    assert.deepEqual((await passes(raw, 2)).map((p) => p.data), ["one", "two"]);
    raw.close();
    await raw.closed;
    // ...but a client that remembers what it saw shows nothing twice.
    const deduped = await ParleyClient.connect({ ...opts, seen: first.seen });
    t.clients.push(deduped);
    await deduped.login("bob", "password-bob");
    await deduped.nextEvent(MsgType.INITIALIZE);
    await alice.sendText({ user: "bob" }, "three");
    assert.deepEqual((await passes(deduped, 1)).map((p) => p.data), ["three"]);
  }));

Deno.test("groups: create, invite, members, send, leave, with every notification", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const carol = await t.user("carol");
    const dave = await t.user("dave");
    // Friends are added at once (strangers are invited: consent_test.ts).
    await befriend(alice, "alice", bob, "bob");
    await befriend(bob, "bob", carol, "carol");
    const g = await alice.createGroup("Hikers", ["bob", "BOB", "alice"]);
    assert.deepEqual(g.group_members, ["alice", "bob"]);
    const added = body(await bob.nextEvent(MsgType.ADD_TO_G));
    assert.deepEqual(added, {
      source_name: "alice",
      group_id: g.group_id,
      group_name: "Hikers",
      group_members: ["alice", "bob"],
    });

    const status = await bob.invite(g.group_id, "carol");
    assert.deepEqual(status, {
      success: true,
      group_id: g.group_id,
      group_name: "Hikers",
      group_members: ["alice", "bob", "carol"],
    });
    assert.equal(body(await carol.nextEvent(MsgType.ADD_TO_G)).source_name, "bob");
    const joined = body(await alice.nextEvent(MsgType.NEW_MEMBER));
    assert.equal(joined.username, "carol");
    assert.equal(joined.source_name, "bob");

    assert.deepEqual((await carol.members(g.group_id)).map((m) => m.username), [
      "alice",
      "bob",
      "carol",
    ]);
    assert.deepEqual(await carol.groups(), [{ group_id: g.group_id, group_name: "Hikers" }]);

    const sent = await carol.sendText({ group: g.group_id }, "summit at noon");
    for (const c of [alice, bob]) {
      const [p] = await passes(c, 1);
      assert.deepEqual(p.id, sent.id);
      assert.equal(p.group_id, g.group_id);
      assert.equal(p.group_name, "Hikers");
      assert.equal(p.source_username, "carol");
    }

    // Outsiders can do nothing with the group.
    await rejects(dave.sendText({ group: g.group_id }, "let me in"), ErrorCode.NOT_A_MEMBER);
    await rejects(dave.invite(g.group_id, "dave"), ErrorCode.NOT_A_MEMBER);
    await rejects(dave.members(g.group_id), ErrorCode.NOT_A_MEMBER);
    await rejects(dave.leaveGroup(g.group_id), ErrorCode.NOT_A_MEMBER);
    await rejects(dave.members(999_999), ErrorCode.NO_SUCH_GROUP);
    await rejects(alice.invite(g.group_id, "bob"), ErrorCode.ALREADY_MEMBER);

    await carol.leaveGroup(g.group_id);
    assert.deepEqual(body(await alice.nextEvent(MsgType.MEMBER_LEFT)), {
      group_id: g.group_id,
      group_name: "Hikers",
      username: "carol",
    });
    await rejects(carol.sendText({ group: g.group_id }, "still here?"), ErrorCode.NOT_A_MEMBER);
    // Names need not be unique; ids are fresh.
    const again = await dave.createGroup("Hikers", []);
    assert.ok(again.group_id > g.group_id);
  }));

Deno.test("a group message reaches offline members at their next login", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await befriend(alice, "alice", bob, "bob");
    const g = await alice.createGroup("Night shift", ["bob"]);
    await bob.logout();
    await alice.sendText({ group: g.group_id }, "anyone up?");
    const back = await t.connect();
    await back.login("bob", "password-bob");
    const init = body(await back.nextEvent(MsgType.INITIALIZE));
    assert.deepEqual(init.groups, [{ group_id: g.group_id, group_name: "Night shift" }]);
    const [p] = await passes(back, 1);
    assert.equal(p.data, "anyone up?");
    assert.equal(p.group_id, g.group_id);
  }));

Deno.test("world messages sent without waiting keep their order, live and in the backlog", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    // Twenty at once: they share commits, and each SENT still comes only once its message is
    // in the backlog.
    const texts = Array.from({ length: 20 }, (_, i) => `burst ${i}`);
    const receipts = await Promise.all(texts.map((x) => alice.sendText({ world: true }, x)));
    assert.equal(receipts.length, 20);
    assert.deepEqual((await passes(bob, 20)).map((p) => p.data), texts);
    const carol = await t.user("carol");
    const init = body(await carol.nextEvent(MsgType.INITIALIZE));
    assert.deepEqual((init.world as Body[]).map((m) => m.data), texts.slice(-5));
  }, { world: { backlog: 5 } }));

Deno.test("the world room reaches everyone online and its backlog is shown at login", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    for (let i = 1; i <= 4; i++) await alice.sendText({ world: true }, `hello world ${i}`);
    const got = await passes(bob, 4);
    assert.deepEqual(got.map((p) => p.data), [
      "hello world 1",
      "hello world 2",
      "hello world 3",
      "hello world 4",
    ]);
    assert.equal(got[0].world, true);
    assert.equal(got[0].seq, 0);
    await t.restart();
    const carol = await t.connect();
    await carol.register("carol", "password-carol");
    await carol.login("carol", "password-carol");
    const init = body(await carol.nextEvent(MsgType.INITIALIZE));
    // The backlog keeps the last 3 (configured), across a restart.
    assert.deepEqual((init.world as Body[]).map((m) => m.data), [
      "hello world 2",
      "hello world 3",
      "hello world 4",
    ]);
    // A later login sees the backlog as it is then, not as an earlier login saw it.
    await carol.sendText({ world: true }, "hello world 5");
    const dave = await t.connect();
    await dave.register("dave", "password-dave");
    await dave.login("dave", "password-dave");
    const later = body(await dave.nextEvent(MsgType.INITIALIZE));
    assert.deepEqual((later.world as Body[]).map((m) => m.data), [
      "hello world 3",
      "hello world 4",
      "hello world 5",
    ]);
    await rejects(
      carol.sendImage({ world: true }, new Uint8Array([1, 2, 3])),
      ErrorCode.BAD_REQUEST,
    );
  }, { world: { backlog: 3 } }));

Deno.test("friends are told when a friend comes and goes; WHO lists who is online, paged", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await befriend(alice, "alice", bob, "bob");
    await bob.logout();
    assert.deepEqual(body(await alice.nextEvent(MsgType.FRIEND_OFFLINE)), { username: "bob" });
    const back = await t.connect();
    await back.login("bob", "password-bob");
    assert.deepEqual(body(await alice.nextEvent(MsgType.FRIEND_ONLINE)), { username: "bob" });
    const init = body(await back.nextEvent(MsgType.INITIALIZE));
    assert.deepEqual(init.friends, [{ username: "alice", online: true }]);
    back.close();
    assert.deepEqual(body(await alice.nextEvent(MsgType.FRIEND_OFFLINE)), { username: "bob" });
    await t.user("carol");
    await t.user("dave");
    assert.deepEqual(await alice.who(0, 2), { total: 3, offset: 0, users: ["alice", "carol"] });
    assert.deepEqual(await alice.who(2, 2), { total: 3, offset: 2, users: ["dave"] });
  }));

Deno.test("size and queue limits refuse with clear errors and lose nothing", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await bob.logout();
    const big = await rejects(
      alice.sendText({ user: "bob" }, "x".repeat(1001)),
      ErrorCode.TOO_LARGE,
    );
    assert.match(big.message, /limited to 1000 bytes/);
    // The limit is in UTF-8 bytes: 334 euro signs are 1,002 of them.
    const wide = await rejects(
      alice.sendText({ user: "bob" }, "€".repeat(334)),
      ErrorCode.TOO_LARGE,
    );
    assert.match(wide.message, /this one has 1002/);
    await rejects(alice.sendImage({ user: "bob" }, new Uint8Array(5000)), ErrorCode.TOO_LARGE);
    for (let i = 0; i < 3; i++) await alice.sendText({ user: "bob" }, `q${i}`);
    const full = await rejects(alice.sendText({ user: "bob" }, "q3"), ErrorCode.QUEUE_FULL);
    assert.match(full.message, /bob has too many undelivered messages/);
    const back = await t.connect();
    await back.login("bob", "password-bob");
    assert.deepEqual((await passes(back, 3)).map((p) => p.data), ["q0", "q1", "q2"]);
    await back.ping();
    // Once delivered, the queue has room again.
    await alice.sendText({ user: "bob" }, "q4");
    assert.equal((await passes(back, 1))[0].data, "q4");
  }, {
    limits: { maxTextBytes: 1000, maxImageBytes: 4096 },
    queue: { maxMessages: 3, senderSharePercent: 100 },
  }));

Deno.test("SEND bodies that name no target, two targets or a bad type are refused", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    await t.user("bob");
    const id = new Uint8Array(16);
    for (
      const b of [
        { id, type: "text", data: "x" },
        { id, target_username: "bob", group_id: 1, type: "text", data: "x" },
        { id, target_username: "bob", type: "video", data: "x" },
        { id, target_username: "bob", type: "text", data: new Uint8Array(3) },
        { id: new Uint8Array(3), target_username: "bob", type: "text", data: "x" },
        { id, target_username: "bob", type: "text", data: "" },
      ]
    ) {
      const reply = await alice.request(MsgType.SEND, b as Value);
      assert.equal(reply.type, MsgType.GENERAL_ERROR, JSON.stringify(b));
      assert.equal(body(reply).code, ErrorCode.BAD_REQUEST);
    }
  }));

Deno.test("group errors: unknown members, full groups, bad names; the last member's leave ends the group", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const carol = await t.user("carol");
    await t.user("dave");
    await befriend(alice, "alice", bob, "bob");
    await befriend(alice, "alice", carol, "carol");
    await rejects(alice.createGroup("team", ["bob", "ghost"]), ErrorCode.NO_SUCH_USER);
    assert.deepEqual(await alice.groups(), [], "a failed create leaves no group behind");
    await rejects(alice.createGroup("team", ["bob", "carol", "dave"]), ErrorCode.GROUP_FULL);
    await rejects(alice.createGroup("   ", []), ErrorCode.BAD_REQUEST);
    await rejects(alice.createGroup("bad\u0007name", []), ErrorCode.BAD_REQUEST);
    const g = await alice.createGroup("  trio  ", ["bob", "carol"]);
    assert.equal(g.group_name, "trio");
    const full = await alice.request(MsgType.INVITE, [g.group_id, "dave"]);
    assert.equal(full.type, MsgType.STATUS_INVITE);
    assert.deepEqual(
      { success: body(full).success, code: body(full).code },
      { success: false, code: ErrorCode.GROUP_FULL },
    );
    await rejects(alice.invite(g.group_id, "ghost"), ErrorCode.NO_SUCH_USER);
    for (const c of [alice, bob, carol]) await c.leaveGroup(g.group_id);
    await rejects(bob.members(g.group_id), ErrorCode.NO_SUCH_GROUP);
  }, { limits: { maxGroupMembers: 3 } }));

Deno.test("a kicked session's undelivered messages go to the new session", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const { ParleyClient } = await import("../../src/client/client.ts");
    const opts = { host: "127.0.0.1", port: t.port, knownHosts: t.knownHosts };
    const lazy = await ParleyClient.connect({ ...opts, autoAck: false });
    t.clients.push(lazy);
    await lazy.register("bob", "password-bob");
    await lazy.login("bob", "password-bob");
    const sent = await alice.sendText({ user: "bob" }, "read me");
    assert.deepEqual((await passes(lazy, 1))[0].id, sent.id); // seen, never acknowledged
    const fresh = await t.connect();
    await fresh.login("bob", "password-bob");
    await lazy.nextEvent(MsgType.KICK);
    assert.equal(body(await fresh.nextEvent(MsgType.INITIALIZE)).pending, 1);
    assert.deepEqual((await passes(fresh, 1))[0].id, sent.id);
  }));

Deno.test("a receiver that disconnects mid-transfer cancels it for the sender", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const sending = assert.rejects(
      alice.sendFile("bob", "big.bin", new Uint8Array(256 * 1024)),
      /bob went offline/,
    );
    const offer = (await bob.nextEvent(MsgType.FILE_INCOMING)).body as { transfer_id: number };
    await bob.request(MsgType.FILE_ANSWER, { transfer_id: offer.transfer_id, accept: true });
    await bob.nextEvent(MsgType.FILE_DATA);
    bob.close();
    await sending;
  }, { files: { chunkBytes: 16 * 1024, window: 2 } }));

Deno.test("friend and group counts per user are capped, so a login summary stays bounded", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await t.user("carol");
    await befriend(alice, "alice", bob, "bob");
    const e = await rejects(alice.addFriend("carol"), ErrorCode.LIMIT_REACHED);
    assert.match(e.message, /alice already has 1 friends/);
    await alice.createGroup("one", ["bob"]);
    await alice.createGroup("two", []);
    const g = await rejects(alice.createGroup("three", ["carol"]), ErrorCode.LIMIT_REACHED);
    assert.match(g.message, /alice is already in 2 groups/);
  }, { limits: { maxFriends: 1, maxGroupsPerUser: 2 } }));
