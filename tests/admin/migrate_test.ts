/**
 * A single server moved into a cluster, as an operator does it: a real server on a data dir
 * gathers users, tokens, friends, groups and queues; it stops; `parley admin backup` (the real
 * CLI) saves its data dir and `parley admin restore --cluster` puts it into a fresh prefix of a
 * real NATS cluster; then cluster nodes serve it, and clients find what they had.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ParleyClient } from "../../src/client/client.ts";
import { KnownHosts } from "../../src/client/known_hosts.ts";
import { connectCluster } from "../../src/cluster/connect.ts";
import { systemClock } from "../../src/clock/clock.ts";
import { ErrorCode } from "../../src/protocol/errors.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import { silentLogger } from "../../src/server/log.ts";
import { startServer } from "../../src/server/server.ts";
import { NatsStoreContext } from "../../src/store/nats/context.ts";
import { destroyNatsStore } from "../../src/store/nats/nats_store.ts";
import { openKvStore } from "../../src/store/kv_store.ts";
import { backupDataDir } from "../../src/admin/backup.ts";
import type { Store } from "../../src/store/types.ts";
import { rejects } from "../helpers/assert.ts";
import { fastConfig, run } from "../helpers/cli.ts";
import { freshPrefix, ParleyCluster, withNatsStore } from "../helpers/cluster.ts";
import { pattern } from "../helpers/content.ts";
import { befriend } from "../helpers/friends.ts";
import { type NatsCluster, natsTest } from "../helpers/nats.ts";
import { HASH } from "../helpers/password_hash.ts";
import { testConfig } from "../helpers/server.ts";

type Pass = { source_username: string; data: string | Uint8Array; group_id?: number };

/** `parley admin ARGS --cluster … --prefix PREFIX` (fast scrypt), the real CLI. */
async function admin(nats: NatsCluster, prefix: string, args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "parley-migrate-cli-" });
  try {
    const config = await fastConfig(dir);
    const cluster = ["--cluster", nats.urls.join(","), "--prefix", prefix, "--config", config];
    return await run(["admin", ...args, ...cluster]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function ok(r: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const out = await r;
  assert.equal(out.code, 0, `admin failed: ${out.stderr}${out.stdout}`);
  return out.stdout;
}

/** Streams and buckets under `prefix`. */
async function namesUnder(nats: NatsCluster, prefix: string): Promise<string[]> {
  const nc = await connectCluster(nats.urls, { name: "parley-test" });
  try {
    const ctx = await NatsStoreContext.open(nc, { prefix, worldBacklog: 0, clock: systemClock });
    return await ctx.names();
  } finally {
    await nc.close();
  }
}

/** Messages in the stream `<prefix>_<kind>`. */
async function messagesIn(nats: NatsCluster, prefix: string, kind: string): Promise<number> {
  const nc = await connectCluster(nats.urls, { name: "parley-test" });
  try {
    const ctx = await NatsStoreContext.open(nc, { prefix, worldBacklog: 0, clock: systemClock });
    return (await ctx.jsm.streams.info(ctx.streamName(kind))).state.messages;
  } finally {
    await nc.close();
  }
}

interface Single {
  dataDir: string;
  fingerprint: string;
  bobToken: Uint8Array;
  tripId: number;
  shared: Uint8Array;
  big: Uint8Array;
}

/**
 * A single server's data dir with some of everything, the server stopped: friends alice and
 * bob, carol's request to alice, alice's block of erin, groups 1 and 3 gone (their last member
 * left) and group 2 "trip" (alice, bob, dan) with carol invited, a world message, and queued
 * for dan (offline) a text, trip's shared image and a large image, for bob the shared image.
 * Bob keeps the resume token of his last session.
 */
async function singleServer(dir: string): Promise<Single> {
  const config = testConfig(join(dir, "data"));
  const server = await startServer(config, silentLogger, { strictInvariants: true });
  const knownHosts = new KnownHosts(join(dir, "known_hosts"));
  const clients: ParleyClient[] = [];
  const user = async (name: string) => {
    const c = await ParleyClient.connect({ host: "127.0.0.1", port: server.addr.port, knownHosts });
    clients.push(c);
    await c.register(name, `password-${name}`);
    await c.login(name, `password-${name}`);
    return c;
  };
  try {
    const alice = await user("alice");
    const bob = await user("bob");
    const carol = await user("carol");
    const dan = await user("dan");
    await user("erin");
    await befriend(alice, "alice", bob, "bob");
    await carol.addFriend("alice");
    await alice.block("erin");
    const first = await alice.createGroup("first", []);
    await alice.leaveGroup(first.group_id);
    // Bob is alice's friend and joins at once; dan is invited and accepts.
    const trip = await alice.createGroup("trip", ["bob", "dan"]);
    await dan.joinGroup(trip.group_id);
    const third = await alice.createGroup("third", []);
    await alice.leaveGroup(third.group_id);
    assert.deepEqual([first.group_id, trip.group_id, third.group_id], [1, 2, 3]);
    await alice.invite(trip.group_id, "carol");
    await alice.sendText({ world: true }, "hello world");
    const bobToken = bob.token!;
    bob.close();
    await bob.closed;
    await dan.logout();
    const shared = pattern(8 * 1024, 1);
    const big = pattern(100 * 1024, 2);
    await alice.sendText({ user: "dan" }, "for dan");
    await alice.sendImage({ group: trip.group_id }, shared, "shared.png");
    await alice.sendImage({ user: "dan" }, big, "big.png");
    return {
      dataDir: config.dataDir,
      fingerprint: alice.fingerprint,
      bobToken,
      tripId: trip.group_id,
      shared,
      big,
    };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    await server.close();
  }
}

natsTest(
  "admin restore --cluster moves a data dir's backup into an empty prefix: clients find the same key, accounts, tokens, friends, groups with their ids, invitations, invite codes, queued messages and world backlog",
  async (nats) => {
    const dir = await Deno.makeTempDir({ prefix: "parley-migrate-" });
    let c: ParleyCluster | null = null;
    try {
      const single = await singleServer(dir);
      const codes = (await ok(run(["admin", "invite", "-n", "2", "--data", single.dataDir])))
        .match(/^[0-9a-f]{5}(-[0-9a-f]{5}){3}$/gm);
      assert.equal(codes?.length, 2, "two invite codes");
      const file = join(dir, "single.jsonl");
      await ok(run(["admin", "backup", file, "--data", single.dataDir]));

      // A truncated file is refused, and nothing is made under the prefix.
      const text = await Deno.readTextFile(file);
      const cut = join(dir, "cut.jsonl");
      await Deno.writeTextFile(cut, text.slice(0, text.trimEnd().lastIndexOf("\n") + 1));
      const truncatedPrefix = freshPrefix();
      const truncated = await admin(nats, truncatedPrefix, ["restore", cut]);
      assert.equal(truncated.code, 1);
      assert.match(truncated.stderr, /truncated\?\); nothing was restored/);
      assert.deepEqual(await namesUnder(nats, truncatedPrefix), []);

      const prefix = freshPrefix();
      const out = await ok(admin(nats, prefix, ["restore", file]));
      assert.match(out, /5 users, 4 resume tokens \(one per device\), 2 invite codes/);
      assert.match(out, /1 friendship, 1 friend request, 1 block/);
      assert.match(out, /1 group, 1 group invitation/);
      assert.match(out, /4 queued messages \(2 images or texts stored once\), 1 world message/);
      assert.ok(out.includes(`identity key ${single.fingerprint} is the cluster's`), out);

      // A second time into the same prefix: refused, and what is there stays.
      const again = await admin(nats, prefix, ["restore", file]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`holds data under the prefix "${prefix}"`));

      await withNatsStore(nats, prefix, async (s) => {
        assert.equal((await s.inbox.stats("dan")).count, 3);
        assert.equal((await s.inbox.stats("bob")).count, 1);
        assert.ok(s.inbox.storedBytes("alice") > single.big.length, "the sender's bytes counted");
      });
      assert.equal(await messagesIn(nats, prefix, "blob"), 2, "one chunk for each image");

      c = await ParleyCluster.start(nats, 2, { accounts: { registration: "invite" } }, prefix);
      // The key clients pinned is the one every node presents.
      const first = await c.connect(0);
      assert.equal(first.fingerprint, single.fingerprint);
      assert.equal(c.servers[1]!.fingerprint, single.fingerprint);

      // Bob resumes with the token his client kept, without a password, on the other node.
      const bob = await c.connect(1);
      const resumed = await bob.resume(single.bobToken);
      assert.equal(resumed.username, "bob");
      const bobPass = (await bob.nextEvent(MsgType.PASS)).body as Pass;
      assert.deepEqual(bobPass.data, single.shared);
      assert.equal(bobPass.group_id, single.tripId);
      await bob.flush();

      // Alice logs in with her old password: her friend, carol's request, her block, her group.
      const alice = await c.login(0, "alice");
      const init = (await alice.nextEvent(MsgType.INITIALIZE)).body as { world: Pass[] };
      assert.deepEqual(init.world.map((m) => m.data), ["hello world"]);
      assert.deepEqual((await alice.friends()).map((f) => f.username), ["bob"]);
      assert.deepEqual(await alice.friendRequests(), { requests: ["carol"], requested: [] });
      assert.deepEqual(await alice.blocks(), ["erin"]);
      assert.deepEqual(await alice.groups(), [{ group_id: 2, group_name: "trip" }]);
      assert.deepEqual(
        (await alice.members(single.tripId)).map((m) => m.username).sort(),
        ["alice", "bob", "dan"],
      );

      // Dan was offline: everything queued for him arrives, in order.
      const dan = await c.login(1, "dan");
      const got: Pass[] = [];
      for (let i = 0; i < 3; i++) got.push((await dan.nextEvent(MsgType.PASS)).body as Pass);
      assert.deepEqual(got.map((p) => p.source_username), ["alice", "alice", "alice"]);
      assert.equal(got[0].data, "for dan");
      assert.deepEqual(got[1].data, single.shared);
      assert.deepEqual(got[2].data, single.big);
      await dan.flush();

      // Carol's invitation to group 2 waits for her, and she can join it.
      const carol = await c.login(0, "carol");
      assert.deepEqual((await carol.invitations()).map((i) => i.group_id), [single.tripId]);
      await carol.joinGroup(single.tripId);

      // A new group takes a fresh id: above every id the single server gave (3 was deleted).
      const next = await alice.createGroup("after", ["bob"]);
      assert.equal(next.group_id, 4);

      // The invite code registers a new account once; a look-alike of an account is refused.
      const frank = await c.connect(1);
      assert.equal(await frank.register("frank", "password-frank", codes![0]), "frank");
      await rejects(frank.register("frank2", "password-frank", codes![0]), ErrorCode.BAD_INVITE);
      const look = await c.connect(0);
      await rejects(look.register("B0b", "password-b0b", codes![1]), ErrorCode.USERNAME_TAKEN);

      await withNatsStore(nats, prefix, async (s) => {
        assert.deepEqual(await s.inbox.stats("dan"), { count: 0, bytes: 0 });
        assert.deepEqual(await s.inbox.stats("bob"), { count: 0, bytes: 0 });
        assert.equal(s.inbox.storedBytes("alice"), 0, "every blob released");
      });
      assert.equal(
        await messagesIn(nats, prefix, "blob"),
        0,
        "every blob purged with its last copy",
      );
    } finally {
      await c?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** Users, relations, groups and queued messages for the store-to-store comparison. */
const MANY = { users: 200, groups: 20, messages: 1000 };

natsTest(
  "a single server's store and the cluster store it moved into give the same answers through the store seam, user by user",
  async (nats) => {
    const dir = await Deno.makeTempDir({ prefix: "parley-migrate-many-" });
    const prefix = freshPrefix();
    try {
      const dataDir = join(dir, "data");
      const kv = await openKvStore(dataDir, { worldBacklog: 50 });
      const names = Array.from({ length: MANY.users }, (_, i) => `User${i}`);
      const named = (i: number) => ({ user: names[i].toLowerCase(), name: names[i] });
      const limits = { maxMessages: 10_000, maxBytes: 1 << 30 };
      try {
        for (const name of names) {
          assert.ok(await kv.users.create({ name, password: HASH, created: new Date() }));
        }
        for (let i = 0; i < MANY.users; i++) {
          await kv.friends.add(named(i), named((i + 1) % MANY.users));
          await kv.friends.request(named(i), named((i + 7) % MANY.users), 100);
          if (i % 5 === 0) await kv.blocks.add(named(i), named((i + 3) % MANY.users), 100);
          await kv.tokens.issue(named(i).user, 3_600_000, 5);
        }
        for (let g = 0; g < MANY.groups; g++) {
          const members = [0, 1, 2, 3].map((k) => named((g * 4 + k) % MANY.users));
          const group = await kv.groups.create(`g${g}`, members[0].user, members);
          await kv.invitations.add([named((g * 4 + 9) % MANY.users)], {
            group: group.id,
            groupName: group.name,
            from: members[0],
          }, { perUser: 100, fromOne: 100 });
          // Every third group goes again: ids are not reused after it.
          if (g % 3 === 2) {
            for (const m of members) await kv.groups.removeMember(group.id, m.user);
          }
        }
        for (let m = 0; m < MANY.messages; m++) {
          const from = names[m % MANY.users];
          const message = m % 50 === 0
            ? {
              id: crypto.getRandomValues(new Uint8Array(16)),
              time: new Date(),
              from,
              kind: "image" as const,
              image: pattern(4096, m),
              group: { id: 1, name: "g0" },
            }
            : {
              id: crypto.getRandomValues(new Uint8Array(16)),
              time: new Date(),
              from,
              kind: "text" as const,
              text: `message ${m}`,
            };
          const to = m % 50 === 0
            ? [1, 2, 3].map((k) => named(k).user)
            : [named((m * 13 + 1) % MANY.users).user];
          await kv.inbox.append(to, message, limits);
          if (m % 20 === 0) {
            await kv.world.append({
              id: message.id,
              time: message.time,
              from,
              world: true,
              kind: "text",
              text: `w${m}`,
            });
          }
        }
      } finally {
        await kv.close();
      }
      const file = join(dir, "many.jsonl");
      await backupDataDir(dataDir, file);
      const started = performance.now();
      const out = await ok(admin(nats, prefix, ["restore", file]));
      const ms = performance.now() - started;
      console.log(
        `moved ${MANY.users} users, ${MANY.messages} queued messages in ${
          ms.toFixed(0)
        } ms (CLI included)`,
      );
      assert.match(out, new RegExp(`${MANY.users} users, ${MANY.users} resume tokens`));
      assert.match(out, new RegExp(`${MANY.messages + 40} queued messages`));

      const single = await openKvStore(dataDir, { worldBacklog: 50 });
      try {
        await withNatsStore(nats, prefix, async (cluster) => {
          for (let i = 0; i < MANY.users; i++) {
            const user = named(i).user;
            const same = async <T>(what: string, read: (s: Store) => Promise<T>) =>
              assert.deepEqual(await read(cluster), await read(single), `${what} of ${user}`);
            await same("the record", async (s) => await s.users.get(user));
            await same(
              "the look-alike",
              (s) => s.users.lookalike(names[i].replace("User", "U5er")),
            );
            await same("friends", (s) => s.friends.list(user));
            await same("requests", (s) => s.friends.requests(user));
            await same("blocks", (s) => s.blocks.list(user));
            await same("blocks either way", async (s) => [...await s.blocks.either(user)].sort());
            await same("groups", (s) => s.groups.groupsOf(user));
            await same("invitations", (s) => s.invitations.list(user));
            await same("the queue's counts", (s) => s.inbox.stats(user));
            await same(
              "the queue",
              async (s) =>
                (await s.inbox.read(user, 0, 10_000)).map((q) => ({
                  ...q.message,
                  seq: 0,
                  size: q.size,
                  cost: q.cost,
                })),
            );
            assert.equal(cluster.inbox.storedBytes(user), single.inbox.storedBytes(user));
          }
          assert.deepEqual(cluster.world.recent(), single.world.recent());
          const next = await cluster.groups.create("next", "user0", [named(0)]);
          assert.equal(next.id, MANY.groups + 1, "a new group's id is above every id given");
        });
      } finally {
        await single.close();
      }
    } finally {
      const nc = await connectCluster(nats.urls, { name: "parley-test-cleanup" });
      await destroyNatsStore(nc, prefix).finally(() => nc.close());
      await Deno.remove(dir, { recursive: true });
    }
  },
);
