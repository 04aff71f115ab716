/**
 * The contract of the inbox: seqs, reads, removal by items or their copies, counts and limits,
 * durability, and what a restart finds.
 */

import assert from "node:assert/strict";
import type { InboxLimits } from "../../../src/store/types.ts";
import { type ContractTest, image, text } from "./harness.ts";

const limits: InboxLimits = { maxMessages: 1000, maxBytes: 1 << 28 };
const online = () => true;
const texts = (items: { message: { text?: string } }[]) => items.map((i) => i.message.text);

export function inboxContract(test: ContractTest): void {
  test("inbox.append() queues one item per recipient, in recipient order, with rising seqs", async (t) => {
    const { inbox } = t.store;
    const first = await inbox.append(["bob", "carol"], text("alice", "one"), limits);
    assert.deepEqual(first.queued.map((i) => i.user), ["bob", "carol"]);
    assert.deepEqual(first.full, []);
    assert.deepEqual(first.capped, []);
    assert.equal(first.refused, null);
    for (const item of first.queued) {
      assert.equal(item.message.text, "one");
      assert.ok(item.size > 0 && item.cost > 0);
    }
    assert.ok(first.cost > 0);
    const second = await inbox.append(["carol"], text("dan", "two"), limits);
    const third = await inbox.append(["bob", "carol"], text("alice", "three"), limits);
    const seqs = (user: string) =>
      [first, second, third].flatMap((e) => e.queued.filter((i) => i.user === user))
        .map((i) => i.seq);
    for (const user of ["bob", "carol"]) {
      const s = seqs(user);
      assert.ok(s.every((x, i) => i === 0 || x > s[i - 1]), `${user}'s seqs rise: ${s}`);
      assert.deepEqual((await inbox.read(user, 0, 10)).map((i) => i.seq), s);
    }
    assert.deepEqual(texts(await inbox.read("carol", 0, 10)), ["one", "two", "three"]);
    assert.deepEqual(texts(await inbox.read("bob", 0, 10)), ["one", "three"]);
    assert.deepEqual(await inbox.read("nobody", 0, 10), []);
  });

  test("inbox.read() starts after a seq, stops at a limit and past maxBytes, but gives at least one", async (t) => {
    const { inbox } = t.store;
    for (const x of ["a", "b", "c", "d"]) await inbox.append(["bob"], text("alice", x), limits);
    const all = await inbox.read("bob", 0, 10);
    assert.deepEqual(texts(all), ["a", "b", "c", "d"]);
    assert.deepEqual(texts(await inbox.read("bob", all[1].seq, 10)), ["c", "d"]);
    assert.deepEqual(texts(await inbox.read("bob", 0, 2)), ["a", "b"]);
    assert.deepEqual(texts(await inbox.read("bob", all[3].seq, 10)), []);
    assert.deepEqual(texts(await inbox.read("bob", 0, 10, all[0].size + all[1].size)), ["a", "b"]);
    assert.deepEqual(texts(await inbox.read("bob", 0, 10, 1)), ["a"], "at least one");
    const big = image("alice", 100_000);
    await inbox.append(["carol"], big, limits);
    const [back] = await inbox.read("carol", 0, 10, 10);
    assert.deepEqual(back.message.image, big.image, "a large image comes back whole");
    assert.deepEqual(back.message.id, big.id);
  });

  test("inbox.remove() takes the items given out, or copies of them, and counts each out once", async (t) => {
    const { inbox } = t.store;
    const a = await inbox.append(["bob"], text("alice", "one"), limits);
    const b = await inbox.enqueue(["bob"], text("alice", "two"), limits, online);
    await inbox.append(["bob"], text("alice", "three"), limits);
    assert.equal((await inbox.stats("bob")).count, 3);
    await inbox.remove("bob", a.queued);
    await inbox.remove("bob", b.queued.map((i) => structuredClone(i)));
    await b.durable.promise();
    assert.deepEqual(texts(await inbox.read("bob", 0, 10)), ["three"]);
    const stats = await inbox.stats("bob");
    assert.equal(stats.count, 1);
    // Removed again (a late ACK of an old session): nothing more is counted out.
    await inbox.remove("bob", [...a.queued, ...b.queued]);
    assert.deepEqual(await inbox.stats("bob"), stats);
    await inbox.remove("bob", await inbox.read("bob", 0, 10));
    assert.deepEqual(await inbox.stats("bob"), { count: 0, bytes: 0 });
  });

  test("a copy read back by a new session and acknowledged late is not counted out twice", async (t) => {
    const { inbox } = t.store;
    const first = await inbox.append(["bob"], text("alice", "one"), limits);
    // Bob reconnects: his new session reads seq 1 back before the old session's ACK lands.
    const again = await inbox.read("bob", 0, 10);
    await inbox.remove("bob", first.queued);
    await inbox.append(["bob"], text("alice", "two"), limits);
    await inbox.remove("bob", again);
    assert.equal((await inbox.stats("bob")).count, 1, "message two still counts, so it is read");
    assert.deepEqual(texts(await inbox.read("bob", 0, 10)), ["two"]);
  });

  test("inbox.enqueue() takes seqs in call order; durable completes, acknowledged or settled", async (t) => {
    const { inbox } = t.store;
    const calls = [];
    for (let i = 0; i < 5; i++) {
      calls.push(inbox.enqueue(["bob", "carol"], text("alice", `m${i}`), limits, online));
    }
    const done = await Promise.all(calls);
    const bobs = done.map((e) => e.queued.find((i) => i.user === "bob")!.seq);
    assert.ok(bobs.every((x, i) => i === 0 || x > bobs[i - 1]), `seqs follow the calls: ${bobs}`);
    // Bob acknowledges every copy; Carol's are written.
    await inbox.remove("bob", done.flatMap((e) => e.queued.filter((i) => i.user === "bob")));
    await inbox.settle();
    await Promise.all(done.map((e) => e.durable.promise()));
    assert.deepEqual(texts(await inbox.read("carol", 0, 10)), ["m0", "m1", "m2", "m3", "m4"]);
    assert.deepEqual(await inbox.read("bob", 0, 10), []);
    // Without acksSoon nothing waits for an ACK that may not come.
    const offline = await inbox.enqueue(["dan"], text("alice", "hi"), limits);
    await offline.durable.promise();
  });

  test("what was durable survives a restart: items, counts, and seqs that go on from the last", async (t) => {
    const small = { maxMessages: 3, maxBytes: 1 << 28 };
    for (let i = 0; i < 3; i++) await t.store.inbox.append(["bob"], text("alice", `m${i}`), small);
    const e = await t.store.inbox.enqueue(["carol"], image("alice", 100_000), limits, online);
    await t.store.inbox.settle();
    await e.durable.promise();
    const before = await t.store.inbox.stats("bob");
    const carol = await t.store.inbox.stats("carol");
    const stored = t.store.inbox.storedBytes();
    const { inbox } = await t.reopen();
    assert.deepEqual(await inbox.stats("bob"), before);
    assert.equal(before.count, 3);
    assert.deepEqual(await inbox.stats("carol"), carol);
    assert.equal(inbox.storedBytes(), stored);
    assert.deepEqual(
      (await inbox.read("carol", 0, 10))[0].message.image,
      new Uint8Array(100_000).fill(1),
    );
    // Still full after the restart, so the limit holds across it.
    assert.deepEqual((await inbox.append(["bob"], text("alice", "m3"), small)).full, ["bob"]);
    const items = await inbox.read("bob", 0, 10);
    await inbox.remove("bob", items.slice(0, 1));
    const next = await inbox.append(["bob"], text("alice", "m4"), small);
    assert.ok(next.queued[0].seq > items[2].seq, "a seq is never given twice");
  });

  test("close() commits what is still waiting to be written", async (t) => {
    // Bob is online, so his copies may wait for an ACK that does not come before the restart.
    const e = await t.store.inbox.enqueue(["bob"], text("alice", "one"), limits, online);
    await t.store.world.append(text("alice", "hi all"));
    const { inbox, world } = await t.reopen();
    await e.durable.promise();
    assert.deepEqual(texts(await inbox.read("bob", 0, 10)), ["one"]);
    assert.deepEqual(world.recent().map((m) => m.text), ["hi all"]);
  });

  test("what was removed stays removed after a restart, acknowledged before or after its write", async (t) => {
    const written = await t.store.inbox.append(["bob"], text("alice", "one"), limits);
    const waiting = await t.store.inbox.enqueue(["bob"], text("alice", "two"), limits, online);
    await t.store.inbox.append(["bob"], text("alice", "three"), limits);
    await t.store.inbox.remove("bob", [...written.queued, ...waiting.queued]);
    await waiting.durable.promise();
    const { inbox } = await t.reopen();
    assert.deepEqual(texts(await inbox.read("bob", 0, 10)), ["three"]);
    assert.equal((await inbox.stats("bob")).count, 1);
  });

  test("inbox.stats(), storedBytes() and queued() follow what is queued and removed", async (t) => {
    const { inbox } = t.store;
    assert.deepEqual(await inbox.stats("bob"), { count: 0, bytes: 0 });
    assert.equal(inbox.storedBytes(), 0);
    const a = await inbox.append(["bob", "carol"], text("alice", "hello"), limits);
    const b = await inbox.append(["bob"], image("dan", 5000), limits);
    const bob = await inbox.stats("bob");
    assert.equal(bob.count, 2);
    assert.equal(bob.bytes, a.queued[0].size + b.queued[0].size);
    assert.equal(inbox.storedBytes(), a.cost + b.cost);
    assert.equal(inbox.storedBytes("alice"), a.cost);
    assert.equal(inbox.storedBytes("dan"), b.cost);
    const carol = await inbox.stats("carol");
    assert.deepEqual(await inbox.queued(), {
      count: bob.count + carol.count,
      bytes: bob.bytes + carol.bytes,
    });
    await inbox.remove("bob", b.queued);
    assert.equal(inbox.storedBytes("dan"), 0);
    assert.equal((await inbox.stats("bob")).count, 1);
    assert.equal((await inbox.queued()).count, 2);
  });

  test("inbox limits: a full queue skips its recipient, the others still get the message", async (t) => {
    const { inbox } = t.store;
    const two = { maxMessages: 2, maxBytes: 1 << 28 };
    await inbox.append(["bob"], text("alice", "1"), two);
    await inbox.append(["bob"], text("alice", "2"), two);
    const third = await inbox.append(["bob", "carol"], text("alice", "3"), two);
    assert.deepEqual(third.full, ["bob"]);
    assert.deepEqual(third.queued.map((i) => i.user), ["carol"]);
    assert.equal((await inbox.stats("bob")).count, 2);
    // By bytes too: room for one of these, not two.
    const one = await inbox.append(["dan"], text("alice", "x".repeat(2000)), limits);
    const bytes = { maxMessages: 100, maxBytes: Math.floor(one.queued[0].size * 1.5) };
    const next = await inbox.append(["dan", "eve"], text("alice", "x".repeat(2000)), bytes);
    assert.deepEqual(next.full, ["dan"]);
    assert.deepEqual(next.queued.map((i) => i.user), ["eve"]);
    // Acknowledged messages make room again.
    await inbox.remove("bob", await inbox.read("bob", 0, 1));
    assert.deepEqual((await inbox.append(["bob"], text("alice", "4"), two)).full, []);
  });

  test("inbox limits: one sender fills at most their share of an inbox; another still gets in", async (t) => {
    const { inbox } = t.store;
    const share: InboxLimits = { maxMessages: 8, maxBytes: 1 << 28, senderSharePercent: 25 };
    for (let i = 0; i < 2; i++) {
      assert.equal(
        (await inbox.append(["victim"], text("mallory", `m${i}`), share)).queued.length,
        1,
      );
    }
    const third = await inbox.append(["victim", "other"], text("Mallory", "m2"), share);
    assert.deepEqual(third.capped, ["victim"], "a quarter of 8 is 2, whatever the name's case");
    assert.deepEqual(third.queued.map((i) => i.user), ["other"]);
    assert.equal((await inbox.append(["victim"], text("alice", "hi"), share)).queued.length, 1);
    // By bytes too: a quarter of 4000 bytes is 1000.
    const bytes: InboxLimits = { maxMessages: 1000, maxBytes: 4000, senderSharePercent: 25 };
    assert.deepEqual((await inbox.append(["v2"], text("bob", "x".repeat(300)), bytes)).capped, []);
    assert.deepEqual((await inbox.append(["v2"], text("bob", "x".repeat(10)), bytes)).capped, [
      "v2",
    ]);
    // Acknowledged messages give the share back.
    await inbox.remove("victim", await inbox.read("victim", 0, 1));
    assert.equal((await inbox.append(["victim"], text("mallory", "m3"), share)).queued.length, 1);
  });

  test("inbox limits: the store's budget and each sender's refuse content, and come back as it is delivered", async (t) => {
    const { inbox } = t.store;
    const budget: InboxLimits = { ...limits, maxSenderBytes: 150_000, maxTotalBytes: 250_000 };
    assert.equal((await inbox.append(["bob"], image("alice", 100_000), budget)).refused, null);
    const alice = inbox.storedBytes("alice");
    const over = await inbox.append(["bob", "carol"], image("alice", 60_000), budget);
    assert.equal(over.refused, "sender_full");
    assert.deepEqual(over.queued, []);
    assert.equal(over.cost, 0);
    assert.equal(inbox.storedBytes("alice"), alice, "the refused one is not counted");
    assert.equal((await inbox.append(["bob"], image("carol", 100_000), budget)).refused, null);
    const none = await inbox.enqueue(["bob"], image("dan", 60_000), budget);
    assert.equal(none.refused, "store_full");
    await none.durable.promise();
    // A group message counts its shared image once against the budgets: 500 × 4 KiB would be
    // 2 MB as copies.
    const group = await inbox.append(
      Array.from({ length: 500 }, (_, i) => `u${i}`),
      image("dan", 4000),
      budget,
    );
    assert.equal(group.refused, null);
    assert.ok(group.cost < 4000 + 500 * 80, `${group.cost}`);
    await inbox.remove("bob", await inbox.read("bob", 0, 10));
    assert.equal((await inbox.append(["bob"], image("alice", 60_000), budget)).refused, null);
    assert.equal((await inbox.read("bob", 0, 10)).length, 1, "nothing was left by the refused");
  });

  test("inbox.append() queues a long group message for hundreds of members", async (t) => {
    const { inbox } = t.store;
    const members = Array.from({ length: 470 }, (_, i) => `m${i}`);
    const message = { ...text("alice", "x".repeat(2000)), group: { id: 1, name: "big" } };
    const { queued, full } = await inbox.append(members, message, limits);
    assert.equal(queued.length, 470);
    assert.deepEqual(full, []);
    for (const m of [members[0], members[235], members[469]]) {
      const items = await inbox.read(m, 0, 10);
      assert.equal(items.length, 1, `${m} has its copy`);
      assert.equal(items[0].message.text, message.text);
      assert.deepEqual(items[0].message.group, message.group);
    }
    // 16 KiB texts to 60 members.
    const long = { ...message, text: "y".repeat(16 * 1024) };
    assert.equal((await inbox.append(members.slice(0, 60), long, limits)).queued.length, 60);
    assert.equal((await inbox.read(members[59], 0, 10)).length, 2);
  });

  test("inbox.clear() empties one user's inbox, for good", async (t) => {
    await t.store.inbox.append(["bob", "carol"], text("alice", "one"), limits);
    await t.store.inbox.append(["bob"], image("alice", 100_000), limits);
    await t.store.inbox.clear("bob");
    assert.deepEqual(await t.store.inbox.read("bob", 0, 10), []);
    assert.deepEqual(await t.store.inbox.stats("bob"), { count: 0, bytes: 0 });
    const { inbox } = await t.reopen();
    assert.deepEqual(await inbox.read("bob", 0, 10), []);
    assert.equal((await inbox.stats("carol")).count, 1);
  });

  test("ping() answers while the store is open", async (t) => {
    await t.store.ping();
  });
}
