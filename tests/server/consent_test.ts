/**
 * Relationships need consent (issue 18, items 14 and 15): the attacks of a stranger, with real
 * clients over TCP, and the blocks that stop them.
 */

import assert from "node:assert/strict";
import type { ParleyClient } from "../../src/client/client.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { rejects } from "../helpers/assert.ts";
import { body, passes } from "../helpers/content.ts";
import { befriend } from "../helpers/friends.ts";
import { withServer } from "../helpers/server.ts";

/** Fails if `c` has a push of `type` waiting, after a round trip that would have brought it. */
async function noPush(c: ParleyClient, type: number, what: string): Promise<void> {
  await c.ping();
  await assert.rejects(c.nextEvent(type, 50), /No /, what);
}

Deno.test("a stranger's ADD_FRIEND is a request: no presence, however often they add again", () =>
  withServer(async (t) => {
    const stranger = await t.user("mallory");
    let victim = await t.user("victim");
    for (let round = 0; round < 3; round++) {
      const r = await stranger.addFriend("victim");
      assert.deepEqual(r, { success: true, username: "victim", online: false, pending: true });
      // Asked again while waiting: the victim is not told twice.
      await stranger.addFriend("victim");
      assert.deepEqual(body(await victim.nextEvent(MsgType.FRIEND_REQUEST)), {
        username: "mallory",
      });
      await noPush(victim, MsgType.FRIEND_REQUEST, "one request, one push");
      assert.deepEqual(await victim.friendRequests(), { requests: ["mallory"], requested: [] });
      assert.deepEqual(await stranger.friendRequests(), { requests: [], requested: ["victim"] });
      // The victim comes and goes: the stranger hears nothing.
      await victim.logout();
      victim = await t.connect();
      await victim.login("victim", "password-victim");
      const init = body(await victim.nextEvent(MsgType.INITIALIZE));
      assert.deepEqual(init.friends, []);
      assert.deepEqual(init.requests, ["mallory"]);
      await victim.ping();
      await noPush(stranger, MsgType.FRIEND_OFFLINE, "no presence for a request");
      await noPush(stranger, MsgType.FRIEND_ONLINE, "no presence for a request");
      assert.deepEqual(await stranger.friends(), []);
      // Declining (REMOVE_FRIEND) ends the request; the stranger may ask again, nothing more.
      await victim.removeFriend("mallory");
      assert.deepEqual(await victim.friendRequests(), { requests: [], requested: [] });
    }
  }));

Deno.test("BLOCK stops messages, requests, group adds, file offers and presence, either way", () =>
  withServer(async (t) => {
    const victim = await t.user("victim");
    const ex = await t.user("ex");
    const pal = await t.user("pal");
    await befriend(victim, "victim", ex, "ex");
    await befriend(victim, "victim", pal, "pal");
    await befriend(ex, "ex", pal, "pal");
    const shared = await pal.createGroup("shared", ["victim", "ex"]);
    assert.deepEqual(shared.group_members, ["ex", "pal", "victim"]);

    assert.equal(await victim.block("EX"), "ex");
    assert.deepEqual(body(await ex.nextEvent(MsgType.FRIEND_REMOVED)), { username: "victim" });
    assert.deepEqual(await victim.blocks(), ["ex"]);
    assert.deepEqual(await victim.friends(), [{ username: "pal", online: true }]);

    const refused = await rejects(ex.sendText({ user: "victim" }, "hi"), ErrorCode.BLOCKED);
    assert.equal(refused.message, "victim has blocked you");
    const mine = await rejects(victim.sendText({ user: "ex" }, "hi"), ErrorCode.BLOCKED);
    assert.equal(mine.message, "You have blocked ex; unblock them first");
    await rejects(ex.addFriend("victim"), ErrorCode.BLOCKED);
    await rejects(ex.createGroup("trap", ["victim"]), ErrorCode.BLOCKED);
    const own = await ex.createGroup("own", []);
    await rejects(ex.invite(own.group_id, "victim"), ErrorCode.BLOCKED);
    await rejects(ex.sendFile("victim", "x.bin", new Uint8Array(10)), ErrorCode.BLOCKED);
    await rejects(victim.sendFile("ex", "x.bin", new Uint8Array(10)), ErrorCode.BLOCKED);

    // In a group they share, neither gets the other's messages; everyone else does.
    await ex.sendText({ group: shared.group_id }, "from ex");
    assert.equal((await passes(pal, 1))[0].data, "from ex");
    await victim.sendText({ group: shared.group_id }, "from victim");
    assert.equal((await passes(pal, 1))[0].data, "from victim");
    await noPush(victim, MsgType.PASS, "the blocked user's group message");
    await noPush(ex, MsgType.PASS, "the blocker's group message");

    // No presence either way: WHO and the member list hide the other side.
    assert.deepEqual((await ex.who()).users, ["ex", "pal"]);
    assert.deepEqual((await victim.who()).users, ["pal", "victim"]);
    assert.deepEqual(
      (await ex.members(shared.group_id)).map((m) => [m.username, m.online]),
      [["ex", true], ["pal", true], ["victim", false]],
    );
    await victim.logout();
    await noPush(ex, MsgType.FRIEND_OFFLINE, "no presence for the blocked");

    // The block outlives a restart, and UNBLOCK lifts it (the friendship stays ended).
    await t.restart();
    const back = await t.connect();
    await back.login("victim", "password-victim");
    const ex2 = await t.connect();
    await ex2.login("ex", "password-ex");
    assert.deepEqual(await back.blocks(), ["ex"]);
    await rejects(ex2.sendText({ user: "victim" }, "still?"), ErrorCode.BLOCKED);
    await back.unblock("ex");
    await rejects(back.unblock("ex"), ErrorCode.NOT_BLOCKED);
    assert.deepEqual(await back.blocks(), []);
    await ex2.sendText({ user: "victim" }, "hello again");
    assert.equal((await passes(back, 1))[0].data, "hello again");
    assert.deepEqual(await back.friends(), [{ username: "pal", online: false }]);
    await rejects(back.block("victim"), ErrorCode.CANNOT_SELF);
    await rejects(back.block("nobody"), ErrorCode.NO_SUCH_USER);
  }));

Deno.test("BLOCK ends a friend request, an invitation and a transfer under way", () =>
  withServer(async (t) => {
    const victim = await t.user("victim");
    const stranger = await t.user("mallory");
    await stranger.addFriend("victim");
    const g = await stranger.createGroup("lure", ["victim"]);
    assert.deepEqual(g.invited, ["victim"]);
    const sending = stranger.sendFile("victim", "a.bin", new Uint8Array(100));
    const offer = body(await victim.nextEvent(MsgType.FILE_INCOMING));
    await victim.block("mallory");
    await assert.rejects(sending, /victim ended the transfer/);
    assert.equal(
      body(await victim.nextEvent(MsgType.FILE_CANCELLED)).transfer_id,
      offer.transfer_id,
    );
    assert.deepEqual(await victim.friendRequests(), { requests: [], requested: [] });
    assert.deepEqual(await victim.invitations(), []);
    await rejects(victim.joinGroup(g.group_id), ErrorCode.NO_SUCH_INVITATION);
  }));

Deno.test("the number of blocks is capped", () =>
  withServer(async (t) => {
    const victim = await t.user("victim");
    await t.user("ann");
    await t.user("ben");
    await victim.block("ann");
    await victim.block("ann"); // again: no change
    const e = await rejects(victim.block("ben"), ErrorCode.LIMIT_REACHED);
    assert.match(e.message, /You have blocked 1 users already/);
  }, { limits: { maxBlocks: 1 } }));

Deno.test("a stranger's 500 groups are invitations: the victim and their friends still have room", () =>
  withServer(async (t) => {
    const stranger = await t.user("mallory");
    const victim = await t.user("victim");
    const pal = await t.user("pal");
    await befriend(victim, "victim", pal, "pal");
    let created = 0;
    let refused = 0;
    for (let i = 0; i < 500; i++) {
      try {
        const g = await stranger.createGroup(`trap ${i}`, ["victim"]);
        assert.deepEqual(g.group_members, ["mallory"]);
        created++;
      } catch (e) {
        assert.equal((e as { code?: number }).code, ErrorCode.LIMIT_REACHED);
        refused++;
      }
    }
    // A few invitations from one stranger, then no more; none of them is a membership.
    assert.deepEqual({ created, refused }, { created: 5, refused: 495 });
    assert.deepEqual(await victim.groups(), []);
    const invitations = await victim.invitations();
    assert.equal(invitations.length, 5);
    assert.deepEqual(invitations[0], {
      group_id: invitations[0].group_id,
      group_name: "trap 0",
      source_name: "mallory",
    });
    assert.equal(body(await victim.nextEvent(MsgType.G_INVITATION)).source_name, "mallory");
    // The victim and a real friend still make groups together.
    const mine = await victim.createGroup("mine", ["pal"]);
    assert.deepEqual(mine.group_members, ["pal", "victim"]);
    const ours = await pal.createGroup("ours", ["victim"]);
    assert.deepEqual(ours.group_members, ["pal", "victim"]);
    // Accepting makes the victim a member (and the group then counts as theirs)...
    const joined = await victim.joinGroup(invitations[0].group_id);
    assert.deepEqual(joined.group_members, ["mallory", "victim"]);
    const news = body(await stranger.nextEvent(MsgType.NEW_MEMBER));
    assert.equal(news.username, "victim");
    assert.equal((await victim.groups()).length, 3);
    // ...declining drops the invitation; either answer works once.
    await victim.declineGroup(invitations[1].group_id);
    await rejects(victim.declineGroup(invitations[1].group_id), ErrorCode.NO_SUCH_INVITATION);
    await rejects(victim.joinGroup(invitations[0].group_id), ErrorCode.NO_SUCH_INVITATION);
    assert.equal((await victim.invitations()).length, 3);
    // An INVITE of a stranger is an invitation too.
    const status = await pal.invite(mine.group_id, "mallory");
    assert.deepEqual(status, {
      success: true,
      group_id: mine.group_id,
      group_name: "mine",
      group_members: ["pal", "victim"],
      pending: true,
    });
    assert.equal((await stranger.nextEvent(MsgType.G_INVITATION)).body !== null, true);
  }));

Deno.test("the invitations waiting for a user are capped across inviters", () =>
  withServer(async (t) => {
    const victim = await t.user("victim");
    const a = await t.user("ann");
    const b = await t.user("ben");
    await a.createGroup("one", ["victim"]);
    await b.createGroup("two", ["victim"]);
    const e = await rejects(b.createGroup("three", ["victim"]), ErrorCode.LIMIT_REACHED);
    assert.match(e.message, /victim has too many group invitations waiting/);
    assert.equal((await victim.invitations()).length, 2);
    // An invitation to a group that has ended goes, and makes room.
    await a.leaveGroup((await a.groups())[0].group_id);
    assert.deepEqual((await victim.invitations()).map((i) => i.group_name), ["two"]);
    await b.createGroup("three", ["victim"]);
  }, { limits: { maxInvitations: 2 } }));

Deno.test("with groups.inviteNeedsConsent off, everyone is added at once (seed 000)", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const g = await alice.createGroup("open", ["bob"]);
    assert.deepEqual(g.group_members, ["alice", "bob"]);
    assert.equal(body(await bob.nextEvent(MsgType.ADD_TO_G)).group_id, g.group_id);
  }, { groups: { inviteNeedsConsent: false } }));

Deno.test("a stranger's unanswered file offers do not take the receiver's transfer slots", () =>
  withServer(async (t) => {
    const victim = await t.user("victim");
    const pal = await t.user("pal");
    const strangers = [await t.user("m1"), await t.user("m2")];
    // Each stranger holds as many offers as it may (its own slots), none answered.
    const offers: Promise<unknown>[] = [];
    for (const s of strangers) {
      for (let i = 0; i < 4; i++) {
        offers.push(s.sendFile("victim", `junk${i}`, new Uint8Array(10)).catch(() => {}));
      }
    }
    for (let i = 0; i < 8; i++) await victim.nextEvent(MsgType.FILE_INCOMING);
    // A fifth offer from one of them is refused: their slots, not the victim's, are full.
    await rejects(
      strangers[0].sendFile("victim", "more", new Uint8Array(1)),
      ErrorCode.LIMIT_REACHED,
    );
    // The victim still sends and receives with a friend.
    const sending = victim.sendFile("pal", "real.txt", new Uint8Array([1, 2, 3]));
    const offer = body(await pal.nextEvent(MsgType.FILE_INCOMING)) as {
      transfer_id: number;
      size: number;
      sha256: Uint8Array;
    };
    const received = await pal.acceptFile(offer, { write: () => Promise.resolve() });
    assert.equal(received.sha256Ok, true);
    assert.equal((await sending as { sha256Ok: boolean }).sha256Ok, true);
    for (const s of strangers) s.close();
    await Promise.all(offers);
  }));

Deno.test("an accepted offer takes a receiver's slot: past the limit, accepting waits", () =>
  withServer(async (t) => {
    const victim = await t.user("victim");
    const a = await t.user("ann");
    const b = await t.user("ben");
    // Two offers wait at once: unanswered, they take none of the victim's one slot.
    const first = a.sendFile("victim", "one", new Uint8Array(10)).catch(() => {});
    const firstOffer = body(await victim.nextEvent(MsgType.FILE_INCOMING)) as {
      transfer_id: number;
    };
    const second = b.sendFile("victim", "two", new Uint8Array(10)).catch(() => {});
    const secondOffer = body(await victim.nextEvent(MsgType.FILE_INCOMING)) as {
      transfer_id: number;
    };
    const answer = (o: { transfer_id: number }) =>
      victim.request(MsgType.FILE_ANSWER, { transfer_id: o.transfer_id, accept: true });
    assert.equal((await answer(firstOffer)).type, MsgType.OK);
    const full = await answer(secondOffer);
    assert.equal(body(full).code, ErrorCode.LIMIT_REACHED);
    // The offer still waits: once the first transfer ends, it can be accepted.
    await victim.cancelFile(firstOffer.transfer_id);
    assert.equal((await answer(secondOffer)).type, MsgType.OK);
    await victim.cancelFile(secondOffer.transfer_id);
    await Promise.all([first, second]);
  }, { files: { maxTransfersPerUser: 1 } }));
