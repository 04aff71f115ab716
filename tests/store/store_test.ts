/** The KV record stores against a real KV file in a temp dir. */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { PasswordHash } from "../../src/crypto/password.ts";
import { decodeValue, encodeValue } from "../../src/protocol/value.ts";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import type { Store } from "../../src/store/types.ts";
import { type Clock, ManualClock } from "../../src/clock/clock.ts";

const HASH: PasswordHash = {
  alg: "scrypt",
  N: 1024,
  r: 8,
  p: 1,
  salt: new Uint8Array(16).fill(1),
  hash: new Uint8Array(32).fill(2),
};

async function withStore(
  fn: (store: Store, dir: string) => Promise<void>,
  clock?: Clock,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  const store = await openKvStore(join(dir, "data"), { worldBacklog: 100, clock });
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("UserStore.create() is case-insensitively unique and keeps the display form", () =>
  withStore(async ({ users }) => {
    assert.equal(await users.create({ name: "Zoe", password: HASH, created: new Date() }), true);
    assert.equal(await users.create({ name: "ZOE", password: HASH, created: new Date() }), false);
    assert.equal((await users.get("zoe"))?.name, "Zoe");
    assert.deepEqual((await users.get("zOE"))?.password, HASH);
    assert.equal(await users.get("zo"), null);
  }));

Deno.test("UserStore.setPassword() replaces the hash and reports unknown users", () =>
  withStore(async ({ users }) => {
    await users.create({ name: "yan", password: HASH, created: new Date() });
    const next = { ...HASH, hash: new Uint8Array(32).fill(9) };
    assert.equal(await users.setPassword("YAN", next), true);
    assert.deepEqual((await users.get("yan"))?.password.hash, next.hash);
    assert.equal(await users.setPassword("nobody", next), false);
  }));

Deno.test("TokenStore keeps only hashes, expires tokens on the store's clock and revokes them", () => {
  const clock = new ManualClock();
  return withStore(async ({ tokens }, dir) => {
    const a = await tokens.issue("xia", 60_000, 10);
    assert.equal(a.token.length, 32);
    assert.equal((await tokens.familyOf(a.token))?.user, "xia");
    // The raw token is not stored anywhere in the KV file.
    const kv = await Deno.openKv(join(dir, "data", "parley.kv"));
    for await (const e of kv.list({ prefix: [] })) {
      assert.ok(!JSON.stringify(e.key).includes(a.token.toHex()), "raw token found in a key");
      assert.ok(
        !(e.value instanceof Uint8Array && e.value.toHex() === a.token.toHex()),
        "raw token stored",
      );
    }
    kv.close();
    // KV's own expireIn runs on real time and deletes lazily: the store checks the expiry itself.
    const short = await tokens.issue("xia", 30_000, 10);
    assert.equal(short.expires.getTime(), clock.wall() + 30_000, "the expiry is on the clock");
    clock.advance(29_999);
    assert.equal((await tokens.familyOf(short.token))?.user, "xia", "alive until it expires");
    clock.advance(1);
    assert.equal(await tokens.familyOf(short.token), null, "an expired token must not resume");
    assert.equal((await tokens.resume(short.token, 60_000)).kind, "unknown");
    assert.equal((await tokens.familyOf(a.token))?.user, "xia", "a longer-lived one still works");
    await tokens.revokeFamily("xia", a.family);
    assert.equal(await tokens.familyOf(a.token), null);
    assert.equal((await tokens.resume(a.token, 60_000)).kind, "unknown");
  }, clock);
});

Deno.test("TokenStore keeps at most tokensPerUser, dropping the oldest, and revokeAll() ends all", () =>
  withStore(async ({ tokens }) => {
    const issued = [];
    for (let i = 0; i < 5; i++) {
      issued.push(await tokens.issue("wu", 60_000 + i, 3));
    }
    const alive = [];
    for (const t of issued) alive.push((await tokens.familyOf(t.token)) !== null);
    assert.deepEqual(alive, [false, false, true, true, true]);
    const other = await tokens.issue("vera", 60_000, 3);
    await tokens.revokeAll("wu");
    for (const t of issued) assert.equal(await tokens.familyOf(t.token), null);
    assert.equal((await tokens.familyOf(other.token))?.user, "vera");
  }));

Deno.test("TokenStore.resume() rotates: the new token works, the replaced one only in the grace", () =>
  withStore(async ({ tokens }) => {
    const first = await tokens.issue("ula", 60_000, 16);
    const r1 = await tokens.resume(first.token, 60_000);
    assert.equal(r1.kind, "ok");
    if (r1.kind !== "ok") return;
    assert.notDeepEqual(r1.token, first.token, "RESUME must hand out a new token");
    assert.equal(r1.family.id, first.family);
    assert.equal(r1.family.expires.getTime(), first.expires.getTime(), "rotation must not extend");
    // The successor was lost: the replaced token still works once, within the grace...
    const r2 = await tokens.resume(first.token, 60_000);
    assert.equal(r2.kind, "ok");
    if (r2.kind !== "ok") return;
    // ...and the lost successor is now a replaced token: presenting it is reuse.
    const stale = await tokens.resume(r1.token, 60_000);
    assert.equal(stale.kind, "reused");
    assert.equal(await tokens.familyOf(r2.token), null, "reuse must end the whole family");
    assert.equal((await tokens.resume(r2.token, 60_000)).kind, "unknown");
  }));

Deno.test("TokenStore.resume() treats a replaced token past the grace as reuse and ends the family", () =>
  withStore(async ({ tokens }) => {
    const first = await tokens.issue("una", 60_000, 16);
    const before = tokens.epoch("una");
    const r1 = await tokens.resume(first.token, 0);
    assert.equal(r1.kind, "ok");
    if (r1.kind !== "ok") return;
    // A thief resumed with the leaked token; the owner comes back with it (or the reverse).
    assert.equal((await tokens.resume(first.token, 0)).kind, "reused");
    assert.equal((await tokens.resume(r1.token, 0)).kind, "unknown", "the thief's token ended");
    // Only revokeAll moves the epoch: other devices' RESUMEs under way must not fail.
    assert.equal(tokens.epoch("una"), before, "one family's end leaves the user's epoch");
    await tokens.revokeAll("una");
    assert.ok(tokens.epoch("una") > before, "revoking every token moves the user's epoch");
  }));

Deno.test("TokenStore.resume() counts the grace for a replaced token on the store's clock", () => {
  const clock = new ManualClock();
  return withStore(async ({ tokens }) => {
    const first = await tokens.issue("uma", 3_600_000, 16);
    const r1 = await tokens.resume(first.token, 60_000);
    assert.equal(r1.kind, "ok");
    clock.advance(59_999);
    const r2 = await tokens.resume(first.token, 60_000);
    assert.equal(r2.kind, "ok", "within the grace");
    if (r2.kind !== "ok") return;
    clock.advance(1);
    assert.equal((await tokens.resume(first.token, 60_000)).kind, "reused", "past the grace");
    assert.equal(await tokens.familyOf(r2.token), null);
  }, clock);
});

Deno.test("InviteStore expires codes on the store's clock", () => {
  const clock = new ManualClock();
  return withStore(async ({ invites }) => {
    const record = await invites.add("abcde-12345", 60_000);
    assert.equal(record.expires.getTime(), clock.wall() + 60_000);
    await invites.add("fghij-67890", 60_000);
    clock.advance(59_999);
    assert.equal(await invites.valid("ABCDE 12345"), true);
    const taken = await invites.take("abcde-12345");
    assert.deepEqual(taken, record);
    await invites.giveBack("abcde-12345", taken!);
    clock.advance(1);
    assert.equal(await invites.valid("abcde-12345"), false, "expired");
    assert.equal(await invites.take("fghij-67890"), null, "an expired code cannot be taken");
    await invites.giveBack("abcde-12345", record);
    assert.equal(await invites.valid("abcde-12345"), false, "an expired code is not given back");
  }, clock);
});

Deno.test("TokenStore.issue() keeps one family per device, and a v1 family does not rotate", () =>
  withStore(async ({ tokens }) => {
    const device = new Uint8Array(16).fill(7);
    const a = await tokens.issue("tao", 60_000, 16, { device });
    const b = await tokens.issue("tao", 60_000, 16, { device });
    assert.equal(await tokens.familyOf(a.token), null, "the device's earlier token must end");
    assert.equal((await tokens.familyOf(b.token))?.id, b.family);
    const other = await tokens.issue("tao", 60_000, 16, { device: new Uint8Array(16).fill(8) });
    assert.equal(
      (await tokens.familyOf(other.token))?.id,
      other.family,
      "another device keeps its",
    );
    // The same device id under another user is another family.
    const sam = await tokens.issue("sam", 60_000, 16, { device });
    assert.notEqual(sam.family, b.family);
    assert.ok(await tokens.familyOf(b.token));
    const old = await tokens.issue("tao", 60_000, 16, { rotates: false });
    const r = await tokens.resume(old.token, 60_000);
    assert.equal(r.kind, "ok");
    if (r.kind === "ok") assert.deepEqual(r.token, old.token, "a v1 family keeps its token");
  }));

Deno.test("TokenStore.resume() forgets replaced tokens beyond a bound, so a family stays small", () =>
  withStore(async ({ tokens }, dir) => {
    let token = (await tokens.issue("rui", 60_000, 16)).token;
    for (let i = 0; i < 30; i++) {
      const r = await tokens.resume(token, 60_000);
      assert.equal(r.kind, "ok");
      if (r.kind === "ok") token = r.token;
    }
    const kv = await Deno.openKv(join(dir, "data", "parley.kv"));
    let entries = 0;
    for await (const _ of kv.list({ prefix: ["token"] })) entries++;
    kv.close();
    assert.ok(entries <= 10, `${entries} token entries for one family`);
  }));

Deno.test("InboxStore.append() queues a large group message for every member, split across commits", () =>
  withStore(async ({ inbox }) => {
    const members = Array.from({ length: 470 }, (_, i) => `m${i}`);
    const message = {
      id: new Uint8Array(16).fill(4),
      time: new Date(),
      from: "alice",
      group: { id: 1, name: "big" },
      kind: "text" as const,
      text: "x".repeat(2000),
    };
    const limits = { maxMessages: 10, maxBytes: 1 << 30 };
    const { queued, full } = await inbox.append(members, message, limits);
    assert.equal(queued.length, 470);
    assert.deepEqual(full, []);
    for (const m of [members[0], members[235], members[469]]) {
      const items = await inbox.read(m, 0, 10);
      assert.equal(items.length, 1, `${m} has its copy`);
      assert.equal(items[0].message.text, message.text);
    }
    // 16 KiB texts to 60 members exceed one commit's bytes; they must still all land.
    const long = { ...message, text: "y".repeat(16 * 1024) };
    const second = await inbox.append(members.slice(0, 60), long, limits);
    assert.equal(second.queued.length, 60);
    assert.equal((await inbox.read(members[59], 0, 10)).length, 2);
  }));

Deno.test("InboxStore.append() leaves no image chunks behind when no recipient takes the message", () =>
  withStore(async ({ inbox }, dir) => {
    const image = new Uint8Array(200 * 1024).fill(7);
    const message = {
      id: new Uint8Array(16),
      time: new Date(),
      from: "alice",
      kind: "image" as const,
      image,
    };
    const none = await inbox.append([], message, { maxMessages: 10, maxBytes: 1 << 30 });
    assert.equal(none.queued.length, 0);
    await inbox.append(["bob"], message, { maxMessages: 10, maxBytes: 1 << 30 });
    const fullUp = await inbox.append(["bob"], message, { maxMessages: 1, maxBytes: 1 << 30 });
    assert.deepEqual(fullUp.full, ["bob"]);
    const items = await inbox.read("bob", 0, 10);
    await inbox.remove("bob", items);
    const kv = await Deno.openKv(join(dir, "data", "parley.kv"));
    let left = 0;
    for await (const _ of kv.list({ prefix: ["blob"] })) left++;
    kv.close();
    assert.equal(left, 0, "orphaned image chunks in the store");
  }));

Deno.test("GroupStore: concurrent joins never pass the size limit; the last leave removes the group", () =>
  withStore(async ({ groups }) => {
    const g = await groups.create("race", "a", [{ user: "a", name: "a" }]);
    const results = await Promise.all(
      Array.from(
        { length: 10 },
        (_, i) => groups.addMember(g.id, { user: `u${i}`, name: `u${i}` }, 4),
      ),
    );
    assert.equal(results.filter((r) => r === "added").length, 3);
    assert.equal(results.filter((r) => r === "full").length, 7);
    const members = await groups.members(g.id);
    assert.equal(members.length, 4);
    assert.equal((await groups.get(g.id))?.size, 4);
    await Promise.all(members.map((m) => groups.removeMember(g.id, m.user)));
    assert.equal(await groups.get(g.id), null);
    assert.equal(await groups.addMember(g.id, { user: "late", name: "late" }, 4), "no_group");
  }));

Deno.test("GroupStore answers follow every create, join and leave, after being read", () =>
  withStore(async ({ groups }) => {
    const ann = { user: "ann", name: "Ann" };
    const ben = { user: "ben", name: "Ben" };
    // Read first, so that the answers are held in memory.
    assert.deepEqual(await groups.groupsOf("ann"), []);
    assert.equal(await groups.countOf("ben"), 0);
    const g = await groups.create("book club", "ann", [ann]);
    assert.deepEqual((await groups.groupsOf("ann")).map((x) => x.name), ["book club"]);
    assert.equal(await groups.isMember(g.id, "ben"), false);
    assert.deepEqual(await groups.members(g.id), [ann]);
    assert.equal(await groups.addMember(g.id, ben, 10), "added");
    assert.equal(await groups.countOf("ben"), 1);
    assert.equal(await groups.isMember(g.id, "ben"), true);
    assert.equal((await groups.get(g.id))?.size, 2);
    assert.deepEqual((await groups.members(g.id)).map((m) => m.name), ["Ann", "Ben"]);
    // A caller changing its copy changes nothing for the next caller.
    (await groups.members(g.id)).length = 0;
    assert.equal((await groups.members(g.id)).length, 2);
    await groups.removeMember(g.id, "ann");
    assert.deepEqual(await groups.groupsOf("ann"), []);
    assert.deepEqual(await groups.members(g.id), [ben]);
    assert.equal((await groups.get(g.id))?.size, 1);
    await groups.removeMember(g.id, "ben");
    assert.equal(await groups.get(g.id), null);
    assert.equal(await groups.countOf("ben"), 0);
  }));

Deno.test("closing the store waits for a removal under way: the image's chunks still go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  try {
    const path = join(dir, "data");
    const store = await openKvStore(path);
    const message = {
      id: new Uint8Array(16),
      time: new Date(),
      from: "alice",
      kind: "image" as const,
      image: new Uint8Array(200 * 1024).fill(9),
    };
    await store.inbox.append(["bob"], message, { maxMessages: 10, maxBytes: 1 << 30 });
    const items = await store.inbox.read("bob", 0, 10);
    // As when the server stops right after an ACK: the removal is not awaited.
    const removal = store.inbox.remove("bob", items);
    await store.close();
    await removal;
    const kv = await Deno.openKv(join(path, "parley.kv"));
    const left: string[] = [];
    for await (const e of kv.list({ prefix: [] })) left.push(JSON.stringify(e.key));
    kv.close();
    assert.deepEqual(left.filter((k) => /^\["(blob|blob_ref|inbox)"/.test(k)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("opening the store sweeps image chunks a crash left without any inbox entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  try {
    const path = join(dir, "data");
    await Deno.mkdir(path, { recursive: true });
    // What a crash between the chunk writes and the inbox write leaves: a marker and chunks.
    const kv = await Deno.openKv(join(path, "parley.kv"));
    await kv.set(["blob_pending", "dead"], new Date());
    await kv.set(["blob", "dead", 0], new Uint8Array(10));
    await kv.set(["blob", "dead", 1], new Uint8Array(10));
    // And a blob whose inbox entry did land (its marker was not yet cleared): it must stay.
    await kv.set(["blob_pending", "live"], new Date());
    await kv.set(["blob", "live", 0], new Uint8Array(10));
    await kv.set(["blob_ref", "live", "bob", 1], true);
    kv.close();
    const store = await openKvStore(path);
    await store.close();
    const after = await Deno.openKv(join(path, "parley.kv"));
    const keys: string[] = [];
    for await (const e of after.list({ prefix: [] })) keys.push(JSON.stringify(e.key));
    after.close();
    assert.ok(!keys.some((k) => k.includes('"dead"')), `left: ${keys.join(" ")}`);
    assert.ok(keys.includes('["blob","live",0]'));
    assert.ok(!keys.some((k) => k.startsWith('["blob_pending"')));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("InboxStore counts are rebuilt from the inbox after a restart; seqs go on from the last", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  try {
    const path = join(dir, "data");
    const message = {
      id: new Uint8Array(16),
      time: new Date(),
      from: "alice",
      kind: "text" as const,
      text: "hi",
    };
    const limits = { maxMessages: 3, maxBytes: 1 << 30 };
    let store = await openKvStore(path);
    for (let i = 0; i < 3; i++) await store.inbox.append(["bob"], message, limits);
    const before = await store.inbox.stats("bob");
    await store.close();
    store = await openKvStore(path);
    assert.deepEqual(await store.inbox.stats("bob"), before);
    assert.equal(before.count, 3);
    // Still full after the restart, so the limit holds across it.
    assert.deepEqual((await store.inbox.append(["bob"], message, limits)).full, ["bob"]);
    const items = await store.inbox.read("bob", 0, 10);
    await store.inbox.remove("bob", items.slice(0, 1));
    const next = await store.inbox.append(["bob"], message, limits);
    assert.equal(next.queued.find((i) => i.user === "bob")?.seq, 4);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the world backlog keeps and stores a message's own id, not the decoder's slab", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  try {
    const path = join(dir, "data");
    // As a SEND's id arrives: a view of the decoder's shared slab.
    const id = decodeValue(encodeValue(new Uint8Array(16).fill(7))) as Uint8Array;
    assert.ok(id.buffer.byteLength > 16);
    const store = await openKvStore(path);
    await store.world.append({ id, time: new Date(), from: "alice", kind: "text", text: "hi" });
    assert.equal(store.world.recent()[0].id.buffer.byteLength, 16);
    await store.close();
    const kv = await Deno.openKv(join(path, KV_FILE));
    const row = await kv.get<{ id: Uint8Array }>(["world", 1]);
    kv.close();
    assert.deepEqual(row.value!.id, id);
    assert.equal(row.value!.id.buffer.byteLength, 16, "the id alone is stored, not its slab");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FriendStore lists follow every add and remove on both sides, after being read", () =>
  withStore(async (store) => {
    const alice = { user: "alice", name: "Alice" };
    const bob = { user: "bob", name: "Bob" };
    const carol = { user: "carol", name: "Carol" };
    // Read first, so that both sides' lists are held in memory.
    assert.deepEqual(await store.friends.list("alice"), []);
    assert.deepEqual(await store.friends.list("bob"), []);
    assert.equal(await store.friends.add(alice, bob), true);
    assert.equal(await store.friends.add(carol, alice), true);
    assert.deepEqual((await store.friends.list("alice")).map((f) => f.name).sort(), [
      "Bob",
      "Carol",
    ]);
    assert.deepEqual(await store.friends.list("bob"), [alice]);
    assert.equal(await store.friends.count("alice"), 2);
    // A caller changing its copy changes nothing for the next caller.
    (await store.friends.list("alice")).length = 0;
    assert.equal(await store.friends.count("alice"), 2);
    assert.equal(await store.friends.remove("bob", "alice"), true);
    assert.deepEqual(await store.friends.list("alice"), [carol]);
    assert.deepEqual(await store.friends.list("bob"), []);
  }));

const ANN = { user: "ann", name: "Ann" };
const BEN = { user: "ben", name: "ben" };
const CY = { user: "cy", name: "Cy" };

Deno.test("FriendStore requests wait until answered, and accepting makes both friends at once", () =>
  withStore(async ({ friends }) => {
    assert.equal(await friends.request(ANN, BEN, 10), "requested");
    assert.equal(await friends.request(ANN, BEN, 10), "waiting");
    assert.equal(await friends.request(ANN, CY, 1), "full", "ann has 1 request out already");
    assert.deepEqual(await friends.requests("ben"), { incoming: [ANN], outgoing: [] });
    assert.deepEqual(await friends.requests("ann"), { incoming: [], outgoing: [BEN] });
    assert.deepEqual(await friends.list("ann"), []);
    assert.equal(await friends.acceptRequest(ANN, BEN), true);
    assert.deepEqual(await friends.list("ann"), [BEN]);
    assert.deepEqual(await friends.list("ben"), [ANN]);
    assert.deepEqual(await friends.requests("ben"), { incoming: [], outgoing: [] });
    assert.equal(await friends.acceptRequest(ANN, BEN), false, "used once");
    assert.equal(await friends.request(CY, ANN, 10), "requested");
    assert.equal(await friends.dropRequest("cy", "ann"), true);
    assert.equal(await friends.dropRequest("cy", "ann"), false);
    await friends.request(CY, ANN, 10);
    await friends.clearRequests("ann");
    assert.deepEqual(await friends.requests("cy"), { incoming: [], outgoing: [] });
  }));

Deno.test("BlockStore keeps who blocked whom, answers either way, and is capped", () =>
  withStore(async ({ blocks }) => {
    assert.equal((await blocks.either("ben")).size, 0);
    assert.equal(await blocks.add(ANN, BEN, 1), "added");
    assert.equal(await blocks.add(ANN, BEN, 1), "already");
    assert.equal(await blocks.add(ANN, CY, 1), "full");
    // The cached sets of both sides changed.
    assert.deepEqual([...await blocks.either("ben")], ["ann"]);
    assert.deepEqual([...await blocks.either("ann")], ["ben"]);
    assert.equal(await blocks.blocked("ann", "ben"), true);
    assert.equal(await blocks.blocked("ben", "ann"), false);
    assert.deepEqual(await blocks.list("ann"), [BEN]);
    assert.equal(await blocks.remove("ann", "ben"), true);
    assert.equal(await blocks.remove("ann", "ben"), false);
    assert.equal((await blocks.either("ben")).size, 0);
    await blocks.add(BEN, CY, 5);
    await blocks.add(CY, ANN, 5);
    await blocks.clear("cy");
    assert.equal((await blocks.either("ann")).size, 0);
    assert.equal((await blocks.either("ben")).size, 0);
  }));

Deno.test("InvitationStore caps invitations per user and per inviter, and drops them", () =>
  withStore(async ({ invitations }) => {
    const limits = { perUser: 2, fromOne: 1 };
    const first = await invitations.add(
      [BEN, CY],
      { group: 1, groupName: "g1", from: ANN },
      limits,
    );
    assert.deepEqual(first, { invited: [BEN, CY], waiting: [], full: [] });
    const again = await invitations.add([BEN], { group: 1, groupName: "g1", from: ANN }, limits);
    assert.deepEqual(again, { invited: [], waiting: [BEN], full: [] });
    const more = await invitations.add([BEN], { group: 2, groupName: "g2", from: ANN }, limits);
    assert.deepEqual(more, { invited: [], waiting: [], full: [BEN] }, "one from ann already");
    await invitations.add([BEN], { group: 3, groupName: "g3", from: CY }, limits);
    const full = await invitations.add([BEN], { group: 4, groupName: "g4", from: CY }, limits);
    assert.deepEqual(full.full, [BEN]);
    const listed = await invitations.list("ben");
    assert.deepEqual(listed.map((i) => [i.group, i.groupName, i.from.name]), [
      [1, "g1", "Ann"],
      [3, "g3", "Cy"],
    ]);
    assert.equal((await invitations.get("ben", 1))?.from.user, "ann");
    await invitations.removeFrom("ben", "ann");
    assert.equal(await invitations.get("ben", 1), null);
    assert.equal(await invitations.remove("ben", 3), true);
    assert.equal(await invitations.remove("ben", 3), false);
    await invitations.clear("cy");
    assert.deepEqual(await invitations.list("cy"), []);
  }));
