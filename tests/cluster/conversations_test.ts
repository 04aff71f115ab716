/**
 * Users spread over three Parley nodes of one cluster (three real NATS servers, JetStream R3)
 * do what users of one server do: private, group and world messages, presence, WHO, friend
 * requests, a second login that kicks the first, and a file transfer, each across nodes.
 */

import assert from "node:assert/strict";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { rejects } from "../helpers/assert.ts";
import { withCluster } from "../helpers/cluster.ts";
import { befriend } from "../helpers/friends.ts";
import { natsTest } from "../helpers/nats.ts";

type Pass = { source_username: string; data: string | Uint8Array; seq: number; group_id?: number };

natsTest(
  "cluster: private messages cross nodes, arrive once, and wait for an offline user",
  async (nats) => {
    await withCluster(nats, async (c) => {
      const alice = await c.user(0, "alice");
      const bob = await c.user(1, "bob");
      await alice.sendText({ user: "bob" }, "hello from node 0");
      const got = (await bob.nextEvent(MsgType.PASS)).body as Pass;
      assert.equal(got.source_username, "alice");
      assert.equal(got.data, "hello from node 0");
      await bob.sendText({ user: "alice" }, "and back from node 1");
      assert.equal(
        ((await alice.nextEvent(MsgType.PASS)).body as Pass).data,
        "and back from node 1",
      );

      // Carol registers on node 2 and logs out; messages wait for her in the cluster's store.
      const carol = await c.user(2, "carol");
      await carol.logout();
      for (let i = 0; i < 5; i++) await alice.sendText({ user: "carol" }, `m${i}`);
      // She comes back through another node and gets them all, in order.
      const back = await c.login(1, "carol");
      const texts = [];
      for (let i = 0; i < 5; i++) {
        texts.push(((await back.nextEvent(MsgType.PASS)).body as Pass).data);
      }
      assert.deepEqual(texts, ["m0", "m1", "m2", "m3", "m4"]);
      await back.flush();
      // Acknowledged means gone: a later login gets nothing again.
      await back.logout();
      const again = await c.login(0, "carol");
      await assert.rejects(again.nextEvent(MsgType.PASS, 500));
    });
  },
);

natsTest("cluster: presence, friend requests and WHO see every node", async (nats) => {
  await withCluster(nats, async (c) => {
    const alice = await c.user(0, "alice");
    const bob = await c.user(1, "bob");
    const carol = await c.user(2, "carol");
    await alice.addFriend("bob");
    assert.deepEqual((await bob.nextEvent(MsgType.FRIEND_REQUEST)).body, { username: "alice" });
    const answered = await bob.addFriend("alice");
    assert.equal(answered.online, true, "alice is online, on another node");
    await alice.nextEvent(MsgType.NEW_FRIEND);
    assert.deepEqual(await alice.friends(), [{ username: "bob", online: true }]);
    const who = await carol.who();
    assert.deepEqual(who.users, ["alice", "bob", "carol"]);
    await bob.logout();
    assert.deepEqual((await alice.nextEvent(MsgType.FRIEND_OFFLINE)).body, { username: "bob" });
    await c.login(2, "bob");
    assert.deepEqual((await alice.nextEvent(MsgType.FRIEND_ONLINE)).body, { username: "bob" });
  });
});

natsTest("cluster: a group and the world room reach members on every node", async (nats) => {
  await withCluster(nats, async (c) => {
    const alice = await c.user(0, "alice");
    const bob = await c.user(1, "bob");
    const carol = await c.user(2, "carol");
    // Bob is a friend, so he is added at once; Carol is a stranger, so she is invited.
    await befriend(alice, "alice", bob, "bob");
    const group = await alice.createGroup("trio", ["bob"]);
    assert.equal(((await bob.nextEvent(MsgType.ADD_TO_G)).body as Pass).group_id, group.group_id);
    await alice.invite(group.group_id, "carol");
    const inv = (await carol.nextEvent(MsgType.G_INVITATION)).body as { group_id: number };
    await carol.joinGroup(inv.group_id);
    for (const member of [alice, bob]) {
      const joined = (await member.nextEvent(MsgType.NEW_MEMBER)).body as { username: string };
      assert.equal(joined.username, "carol");
    }
    await alice.sendText({ group: group.group_id }, "to the group");
    for (const member of [bob, carol]) {
      const got = (await member.nextEvent(MsgType.PASS)).body as Pass;
      assert.equal(got.data, "to the group");
      assert.equal(got.group_id, group.group_id);
    }
    await carol.sendText({ world: true }, "hello world");
    for (const other of [alice, bob]) {
      const got = (await other.nextEvent(MsgType.PASS)).body as Pass;
      assert.equal(got.data, "hello world");
      assert.equal(got.source_username, "carol");
    }
    // A later login anywhere gets the world backlog from the cluster's store.
    const dan = await c.user(1, "dan");
    const init = (await dan.nextEvent(MsgType.INITIALIZE)).body as { world: Pass[] };
    assert.deepEqual(
      init.world.map((m) => m.data),
      ["hello world"],
      "the backlog is the cluster's",
    );
  });
});

natsTest(
  "cluster: a second login on another node kicks the first; the token of the first is revoked",
  async (nats) => {
    await withCluster(nats, async (c) => {
      const alice = await c.user(0, "alice");
      const bob = await c.user(1, "bob");
      await befriend(alice, "alice", bob, "bob");
      const kicked = alice.nextEvent(MsgType.KICK);
      const second = await c.login(2, "alice");
      await kicked;
      // Bob saw no offline and online flicker: alice stayed online.
      await assert.rejects(bob.nextEvent(MsgType.FRIEND_OFFLINE, 500));
      await bob.sendText({ user: "alice" }, "to the new session");
      assert.equal(
        ((await second.nextEvent(MsgType.PASS)).body as Pass).data,
        "to the new session",
      );
      assert.deepEqual((await bob.who()).users, ["alice", "bob"]);
    });
  },
);

natsTest("cluster: a file goes from a user on one node to a user on another", async (nats) => {
  await withCluster(nats, async (c) => {
    const alice = await c.user(0, "alice");
    const bob = await c.user(2, "bob");
    await befriend(alice, "alice", bob, "bob");
    const file = new Uint8Array(300 * 1024).map((_, i) => (i * 7) & 0xff);
    const sending = alice.sendFile("bob", "notes.bin", file);
    const offer = (await bob.nextEvent(MsgType.FILE_INCOMING)).body as {
      transfer_id: number;
      source_username: string;
      name: string;
      size: number;
      sha256: Uint8Array;
    };
    assert.equal(offer.size, file.length);
    const parts: Uint8Array[] = [];
    const received = await bob.acceptFile(offer, {
      write: (d) => Promise.resolve(void parts.push(d.slice())),
    });
    assert.equal(received.sha256Ok, true);
    assert.deepEqual((await sending).sha256Ok, true);
    const whole = new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer());
    assert.deepEqual(whole, file);
  });
});

natsTest(
  "cluster: a new password or a logout everywhere ends the account's sessions on every node",
  async (nats) => {
    await withCluster(nats, async (c) => {
      await c.user(0, "ivan", "old password");
      // A script's one-shot session on node 1: not the user's session, so no login kicks it, but a
      // new password ends it wherever it is.
      const script = await c.connect(1, { oneShot: true });
      await script.login("ivan", "old password");
      const laptop = await c.login(2, "ivan", "old password");
      const ended = script.nextEvent(MsgType.KICK);
      await laptop.changePassword("old password", "new password");
      await ended;
      // Logging out everywhere from node 0 ends another script's session on node 1.
      const other = await c.connect(1, { oneShot: true });
      await other.login("ivan", "new password");
      const desk = await c.login(0, "ivan", "new password");
      const ends = other.nextEvent(MsgType.KICK);
      await desk.logout(true);
      await ends;
    });
  },
);

natsTest(
  "cluster: a block across nodes ends the friendship and refuses messages both ways",
  async (nats) => {
    await withCluster(nats, async (c) => {
      const victim = await c.user(0, "victim");
      const ex = await c.user(1, "ex");
      await befriend(victim, "victim", ex, "ex");
      assert.equal(await victim.block("EX"), "ex");
      assert.deepEqual((await ex.nextEvent(MsgType.FRIEND_REMOVED)).body, { username: "victim" });
      await rejects(ex.sendText({ user: "victim" }, "hi"), ErrorCode.BLOCKED);
      await rejects(victim.sendText({ user: "ex" }, "hi"), ErrorCode.BLOCKED);
      await rejects(ex.sendFile("victim", "x.bin", new Uint8Array(10)), ErrorCode.BLOCKED);
      assert.deepEqual((await ex.who()).users, ["ex"], "victim is hidden from ex's WHO");
    });
  },
);

natsTest(
  "cluster: an image, a friend removed, a member leaving: each told across nodes",
  async (nats) => {
    await withCluster(nats, async (c) => {
      const alice = await c.user(0, "alice");
      const bob = await c.user(1, "bob");
      const carol = await c.user(2, "carol");
      await befriend(alice, "alice", bob, "bob");
      await befriend(alice, "alice", carol, "carol");
      const image = new Uint8Array(300 * 1024).map((_, i) => i & 0xff);
      await alice.sendImage({ user: "bob" }, image, "photo.png");
      const got = (await bob.nextEvent(MsgType.PASS)).body as Pass & { type: string; name: string };
      assert.equal(got.type, "image");
      assert.equal(got.name, "photo.png");
      assert.deepEqual(got.data, image, "a 300 KiB image arrives whole from another node");
      const g = await alice.createGroup("trio", ["bob", "carol"]);
      await bob.nextEvent(MsgType.ADD_TO_G);
      await carol.nextEvent(MsgType.ADD_TO_G);
      await carol.leaveGroup(g.group_id);
      for (const member of [alice, bob]) {
        assert.deepEqual((await member.nextEvent(MsgType.MEMBER_LEFT)).body, {
          group_id: g.group_id,
          group_name: "trio",
          username: "carol",
        });
      }
      await rejects(carol.sendText({ group: g.group_id }, "still here?"), ErrorCode.NOT_A_MEMBER);
      await alice.removeFriend("bob");
      assert.deepEqual((await bob.nextEvent(MsgType.FRIEND_REMOVED)).body, { username: "alice" });
      assert.deepEqual(await bob.friends(), []);
    });
  },
);
