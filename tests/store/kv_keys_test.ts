/**
 * The KV key layout stays what existing data files hold: the keys below are written as literals,
 * the way the store wrote them before src/store/kv_keys.ts existed, and read back through it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256 } from "../../src/crypto/keys.ts";
import { HASH } from "../helpers/password_hash.ts";
import { usernameLookalikeKey } from "../../src/protocol/names.ts";
import * as K from "../../src/store/kv_keys.ts";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";

Deno.test("kv_keys builds every key as the layout has it", () => {
  const cases: [Deno.KvKey, Deno.KvKey][] = [
    [K.SCHEMA_KEY, ["meta", "schema"]],
    [K.LOOKALIKE_INDEXED_KEY, ["meta", "lookalike_index"]],
    [K.HEALTH_KEY, ["health"]],
    [K.userKey("ann"), ["user", "ann"]],
    [K.userLookKey("ann"), ["user_look", "ann"]],
    [K.tokenFamilyKey("f"), ["token_family", "f"]],
    [K.tokenKey("h"), ["token", "h"]],
    [K.userTokenKey("ann", "f"), ["user_token", "ann", "f"]],
    [K.userTokensPrefix("ann"), ["user_token", "ann"]],
    [K.inviteKey("h"), ["invite", "h"]],
    [K.friendKey("ann", "bob"), ["friend", "ann", "bob"]],
    [K.friendsPrefix("ann"), ["friend", "ann"]],
    [K.friendRequestKey("bob", "ann"), ["friend_req", "bob", "ann"]],
    [K.friendRequestsPrefix("bob"), ["friend_req", "bob"]],
    [K.friendRequestOutKey("ann", "bob"), ["friend_req_out", "ann", "bob"]],
    [K.friendRequestsOutPrefix("ann"), ["friend_req_out", "ann"]],
    [K.GROUP_SEQ_KEY, ["group_seq"]],
    [K.groupKey(7), ["group", 7]],
    [K.groupPendingKey(7), ["group_pending", 7]],
    [K.memberKey(7, "ann"), ["member", 7, "ann"]],
    [K.membersPrefix(7), ["member", 7]],
    [K.memberOfKey("ann", 7), ["member_of", "ann", 7]],
    [K.memberOfPrefix("ann"), ["member_of", "ann"]],
    [K.groupInvitationKey("bob", 7), ["g_invite", "bob", 7]],
    [K.groupInvitationsPrefix("bob"), ["g_invite", "bob"]],
    [K.blockKey("ann", "bob"), ["block", "ann", "bob"]],
    [K.blocksPrefix("ann"), ["block", "ann"]],
    [K.blockedByKey("bob", "ann"), ["blocked_by", "bob", "ann"]],
    [K.blockedByPrefix("bob"), ["blocked_by", "bob"]],
    [K.worldKey(3), ["world", 3]],
    [K.inboxKey("ann", 3), ["inbox", "ann", 3]],
    [K.inboxPrefix("ann"), ["inbox", "ann"]],
    [K.blobChunkKey("b", 0), ["blob", "b", 0]],
    [K.blobChunksPrefix("b"), ["blob", "b"]],
    [K.blobRefKey("b", "ann", 3), ["blob_ref", "b", "ann", 3]],
    [K.blobRefsPrefix("b"), ["blob_ref", "b"]],
    [K.blobPendingKey("b"), ["blob_pending", "b"]],
    [K.blobPendingRefKey("b", "ann", 3), ["blob_pending", "b", "ann", 3]],
    [K.allOf(K.PREFIX.groupInvitation), ["g_invite"]],
  ];
  for (const [built, literal] of cases) assert.deepEqual(built, literal);
  // Every kind of the table is one of the cases above.
  const kinds = new Set(cases.map(([, literal]) => literal[0]));
  for (const kind of Object.values(K.PREFIX)) assert.ok(kinds.has(kind), kind);
});

Deno.test("a store written with literal keys reads and writes through kv_keys", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-kv-keys-" });
  try {
    const now = new Date();
    const later = new Date(now.getTime() + 3_600_000);
    const token = new Uint8Array(32).fill(9);
    const hash = sha256(token).toHex();
    const user = (name: string) => ({ name, password: HASH, created: now });
    const message = (n: number) => ({
      id: new Uint8Array(16).fill(n),
      time: now,
      from: "Ann",
      world: true,
      kind: "text",
      text: `world ${n}`,
    });
    const kv = await Deno.openKv(join(dir, KV_FILE));
    const literal: [Deno.KvKey, unknown][] = [
      [["meta", "lookalike_index"], 1],
      [["user", "ann"], user("Ann")],
      [["user", "bob"], user("Bob")],
      [["user", "cat"], user("Cat")],
      [["user_look", usernameLookalikeKey("Ann")], "ann"],
      [["friend", "ann", "bob"], "Bob"],
      [["friend", "bob", "ann"], "Ann"],
      [["friend_req", "cat", "ann"], "Ann"],
      [["friend_req_out", "ann", "cat"], "Cat"],
      [["group_seq"], 7],
      [["group", 7], { id: 7, name: "Team", creator: "Ann", created: now, size: 1 }],
      [["member", 7, "ann"], "Ann"],
      [["member_of", "ann", 7], true],
      [["g_invite", "bob", 7], { groupName: "Team", fromUser: "ann", fromName: "Ann", time: now }],
      [["block", "bob", "cat"], "Cat"],
      [["blocked_by", "cat", "bob"], true],
      [["invite", sha256(new TextEncoder().encode("abcde12345")).toHex()], {
        created: now,
        expires: later,
      }],
      [["token_family", "fam"], {
        user: "ann",
        id: "fam",
        device: null,
        rotates: true,
        created: now,
        expires: later,
        current: hash,
        previous: null,
        rotated: null,
        retired: [],
      }],
      [["token", hash], { user: "ann", family: "fam", expires: later }],
      [["user_token", "ann", "fam"], later],
      [["world", 1], message(1)],
      [["world", 2], message(2)],
    ];
    for (const [key, value] of literal) await kv.set(key, value);
    kv.close();

    const store = await openKvStore(dir);
    try {
      assert.equal((await store.users.get("ANN"))?.name, "Ann");
      assert.equal(await store.users.lookalike("ann"), "Ann");
      assert.deepEqual(await store.friends.list("ann"), [{ user: "bob", name: "Bob" }]);
      assert.equal(await store.friends.hasRequest("ann", "cat"), true);
      assert.deepEqual((await store.friends.requests("ann")).outgoing, [
        { user: "cat", name: "Cat" },
      ]);
      assert.equal((await store.groups.get(7))?.name, "Team");
      assert.deepEqual(await store.groups.members(7), [{ user: "ann", name: "Ann" }]);
      assert.deepEqual((await store.groups.groupsOf("ann")).map((g) => g.id), [7]);
      assert.deepEqual((await store.invitations.list("bob")).map((i) => i.group), [7]);
      assert.equal(await store.blocks.blocked("bob", "cat"), true);
      assert.deepEqual([...await store.blocks.either("cat")], ["bob"]);
      assert.equal(await store.invites.valid("ABCDE-12345"), true);
      assert.equal((await store.tokens.familyOf(token))?.id, "fam");
      assert.deepEqual(store.world.recent().map((m) => m.text), ["world 1", "world 2"]);
      // Writes land on the same keys.
      const team = await store.groups.create("Next", "Bob", [{ user: "bob", name: "Bob" }]);
      assert.equal(team.id, 8);
      await store.friends.remove("ann", "bob");
      await store.blocks.remove("bob", "cat");
    } finally {
      await store.close();
    }
    const after = await Deno.openKv(join(dir, KV_FILE));
    try {
      assert.equal((await after.get(["group_seq"])).value, 8);
      assert.equal((await after.get(["member", 8, "bob"])).value, "Bob");
      assert.equal((await after.get(["member_of", "bob", 8])).value, true);
      for (
        const gone of [["friend", "ann", "bob"], ["friend", "bob", "ann"], ["block", "bob", "cat"]]
      ) {
        assert.equal((await after.get(gone)).versionstamp, null, String(gone));
      }
    } finally {
      after.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
