/**
 * `parley admin --cluster` against a live cluster: real NATS servers (JetStream R3), real
 * Parley nodes in this process, and the real CLI as a child process for the commands.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { MsgType } from "../../src/protocol/messages.ts";
import { freshPrefix, ParleyCluster, withNatsStore } from "../helpers/cluster.ts";
import { fastConfig, run } from "../helpers/cli.ts";
import { pattern } from "../helpers/content.ts";
import { befriend } from "../helpers/friends.ts";
import { type NatsCluster, natsTest } from "../helpers/nats.ts";

type Pass = { source_username: string; data: string | Uint8Array; seq: number; group_id?: number };

/** Runs `parley admin ARGS --cluster … --prefix PREFIX --config (fast scrypt)`. */
async function admin(
  nats: NatsCluster,
  prefix: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "parley-admin-cluster-" });
  try {
    const config = await fastConfig(dir);
    const cluster = ["--cluster", nats.urls.join(","), "--prefix", prefix, "--config", config];
    return await run(["admin", ...args, ...cluster], { input });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function ok(
  r: Promise<{ code: number; stdout: string; stderr: string }>,
): Promise<string> {
  const out = await r;
  assert.equal(out.code, 0, `admin failed: ${out.stderr}${out.stdout}`);
  return out.stdout;
}

natsTest(
  "admin --cluster: users, groups and stats read the live cluster; reset-password and delete-user end the user's sessions on their node",
  async (nats) => {
    const c = await ParleyCluster.start(nats, 2);
    try {
      const alice = await c.user(0, "alice");
      const bob = await c.user(1, "Bob");
      await befriend(alice, "alice", bob, "bob");
      await alice.createGroup("trip", ["bob"]);
      await bob.nextEvent(MsgType.ADD_TO_G);
      const carol = await c.user(0, "carol");
      await carol.logout();
      await alice.sendText({ user: "carol" }, "waiting for carol");

      const users = JSON.parse(await ok(admin(nats, c.prefix, ["users", "--json"]))).users;
      assert.deepEqual(
        users.map((u: { name: string; friends: number; groups: number; queued: number }) => [
          u.name,
          u.friends,
          u.groups,
          u.queued,
        ]),
        [["alice", 1, 1, 0], ["Bob", 1, 1, 0], ["carol", 0, 0, 1]],
      );
      const groups = JSON.parse(await ok(admin(nats, c.prefix, ["groups", "--json"]))).groups;
      assert.deepEqual(
        groups.map((g: { name: string; members: string[] }) => [g.name, g.members]),
        [
          ["trip", ["alice", "Bob"]],
        ],
      );
      const stats = JSON.parse(await ok(admin(nats, c.prefix, ["stats", "--json"])));
      assert.equal(stats.users, 3);
      assert.equal(stats.groups, 1);
      assert.equal(stats.friendships, 1);
      assert.equal(stats.queuedMessages, 1);
      assert.equal(stats.nodes, 2, "both nodes heard");
      assert.equal(stats.online, 2, "alice and Bob online");
      assert.equal(stats.fingerprint, c.servers[0]!.fingerprint);
      assert.match(await ok(admin(nats, c.prefix, ["stats"])), /users\s+3\n/);

      // Bob's session on node 1 ends at once; his old password no longer works, the new one does.
      const kicked = bob.nextEvent(MsgType.KICK);
      assert.match(
        await ok(
          admin(nats, c.prefix, ["reset-password", "bob", "--password-stdin"], "new-pass-1\n"),
        ),
        /New password set for Bob/,
      );
      assert.match(
        ((await kicked).body as { reason: string }).reason,
        /password of "Bob" was changed/,
      );
      await assert.rejects(c.login(0, "bob"));
      const again = await c.login(0, "bob", "new-pass-1");

      const gone = again.nextEvent(MsgType.KICK);
      assert.match(
        await ok(admin(nats, c.prefix, ["delete-user", "bob", "--yes"])),
        /Deleted Bob with 1 friend, 1 group/,
      );
      await gone;
      await withNatsStore(nats, c.prefix, async (store) => {
        assert.equal(await store.users.get("bob"), null);
        assert.deepEqual(await store.friends.list("alice"), []);
        assert.equal((await store.groups.groupsOf("alice"))[0].size, 1);
      });

      // A prefix without a store is named, and nothing is made under it.
      const none = freshPrefix();
      const r = await admin(nats, none, ["users"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`no Parley store under the prefix "${none}"`));
    } finally {
      await c.stop();
    }
  },
);

natsTest(
  "admin --cluster: a backup of a live cluster restores under another prefix, where nodes serve it: accounts, friends, groups, world, and queued messages (shared images too) delivered once",
  async (nats) => {
    const dir = await Deno.makeTempDir({ prefix: "parley-cluster-backup-" });
    const c = await ParleyCluster.start(nats, 2);
    let r: ParleyCluster | null = null;
    try {
      const alice = await c.user(0, "alice");
      const bob = await c.user(1, "bob");
      const carol = await c.user(1, "carol");
      await befriend(alice, "alice", bob, "bob");
      await befriend(alice, "alice", carol, "carol");
      const trip = await alice.createGroup("trip", ["bob", "carol"]);
      await bob.nextEvent(MsgType.ADD_TO_G);
      await carol.nextEvent(MsgType.ADD_TO_G);
      await alice.sendText({ world: true }, "hello world");
      await bob.logout();
      await carol.logout();
      // Delivered and acknowledged before the backup: a deleted message, a gap in the stream.
      await alice.sendText({ user: "carol" }, "read before the backup");
      const early = await c.login(0, "carol");
      await early.nextEvent(MsgType.PASS);
      await early.flush();
      await early.logout();
      const shared = pattern(8 * 1024, 1);
      const big = pattern(300 * 1024, 2);
      await alice.sendText({ user: "bob" }, "queued text");
      await alice.sendImage({ group: trip.group_id }, shared, "shared.png");
      await alice.sendImage({ user: "bob" }, big, "big.png");
      const before = await withNatsStore(nats, c.prefix, async (s) => ({
        bob: await s.inbox.stats("bob"),
        carol: await s.inbox.stats("carol"),
        stored: s.inbox.storedBytes("alice"),
      }));
      assert.equal(before.bob.count, 3);
      assert.equal(before.carol.count, 1, "the group image");

      const file = join(dir, "cluster.jsonl");
      assert.match(
        await ok(admin(nats, c.prefix, ["backup", file])),
        new RegExp(`Backed up \\d+ streams of the cluster's prefix "${c.prefix}"`),
      );
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      const lines = (await Deno.readTextFile(file)).trim().split("\n");
      assert.equal(JSON.parse(lines[0]).format, "parley-cluster-backup");

      // Refused into the prefix it came from (it holds data), and into a KV data dir.
      const refused = await admin(nats, c.prefix, ["restore", file]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`holds data under the prefix "${c.prefix}"`));
      const kv = await run(["admin", "restore", file, "--data", join(dir, "data")]);
      assert.equal(kv.code, 1);
      assert.match(kv.stderr, /restore it with --cluster/);

      const prefix = freshPrefix();
      assert.match(
        await ok(admin(nats, prefix, ["restore", file])),
        /\(3 users, 1 group, 4 queued messages\)/,
      );

      await withNatsStore(nats, prefix, async (s) => {
        assert.equal((await s.users.get("alice"))?.name, "alice");
        assert.deepEqual((await s.friends.list("alice")).map((f) => f.user), ["bob", "carol"]);
        assert.deepEqual((await s.groups.groupsOf("carol")).map((g) => g.name), ["trip"]);
        assert.deepEqual(await s.inbox.stats("bob"), before.bob);
        assert.equal((await s.inbox.stats("carol")).count, 1, "the group image");
        assert.equal(s.inbox.storedBytes("alice"), before.stored, "stored bytes recomputed");
        assert.deepEqual(s.world.recent().map((m) => m.text), ["hello world"]);
      });

      r = await ParleyCluster.start(nats, 2, {}, prefix);
      assert.equal(r.servers[0]!.fingerprint, c.servers[0]!.fingerprint, "the same identity");
      const bob2 = await r.login(1, "bob");
      const got: Pass[] = [];
      for (let i = 0; i < 3; i++) got.push((await bob2.nextEvent(MsgType.PASS)).body as Pass);
      assert.equal(got[0].data, "queued text");
      assert.deepEqual(got[1].data, shared);
      assert.equal(got[1].group_id, trip.group_id);
      assert.deepEqual(got[2].data, big);
      await assert.rejects(bob2.nextEvent(MsgType.PASS, 500), "each once");
      await bob2.flush();
      await bob2.logout();
      const carol2 = await r.login(0, "carol");
      assert.deepEqual(((await carol2.nextEvent(MsgType.PASS)).body as Pass).data, shared);
      await carol2.flush();
      await carol2.logout();
      const bob3 = await r.login(0, "bob");
      await assert.rejects(bob3.nextEvent(MsgType.PASS, 500), "acknowledged: gone");
      await withNatsStore(nats, prefix, async (s) => {
        assert.deepEqual(await s.inbox.stats("bob"), { count: 0, bytes: 0 });
        assert.equal(s.inbox.storedBytes("alice"), 0, "every blob released");
      });
      const dan = await r.user(1, "dan");
      const init = (await dan.nextEvent(MsgType.INITIALIZE)).body as { world: Pass[] };
      assert.deepEqual(init.world.map((m) => m.data), ["hello world"]);
    } finally {
      await r?.stop();
      await c.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

natsTest(
  "serve --check-config on a cluster node names the NATS server and the cluster's key; a key of the node's own that is not the cluster's exits 1",
  async (nats) => {
    const c = await ParleyCluster.start(nats, 1);
    const dir = await Deno.makeTempDir({ prefix: "parley-check-cluster-" });
    try {
      const config = await fastConfig(dir, { cluster: { nats: nats.urls, prefix: c.prefix } });
      const check = (data: string) =>
        run(["serve", "--check-config", "--config", config, "--data", data]);
      const stats = JSON.parse(await ok(admin(nats, c.prefix, ["stats", "--json"])));
      const fresh = await check(join(dir, "none"));
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.match(
        fresh.stdout,
        new RegExp(`cluster +127\\.0\\.0\\.1:\\d+ answers; prefix "${c.prefix}"`),
      );
      assert.match(fresh.stdout, new RegExp(`a store with identity ${escape(stats.fingerprint)}`));
      assert.match(fresh.stdout, /data dir .*\(not used by a cluster node\)/);

      const other = join(dir, "other");
      await Deno.mkdir(other);
      await Deno.writeTextFile(
        join(other, "identity.key"),
        crypto.getRandomValues(new Uint8Array(32)).toHex(),
      );
      const refused = await check(other);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /The identity key in .* is not the cluster's/);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await c.stop();
    }
  },
);

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
