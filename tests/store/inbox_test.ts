/**
 * The inbox with deferred rows on a real KV file: seq order in the store, and counts after a
 * failed commit.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeValue, encodeValue } from "../../src/protocol/value.ts";
import { GroupCommitter } from "../../src/store/committer.ts";
import { KvInboxStore } from "../../src/store/inbox.ts";
import type { ChatMessage, InboxItem } from "../../src/store/types.ts";
import { until } from "../helpers/assert.ts";
import { routedKv } from "../helpers/kv.ts";

const limits = { maxMessages: 20_000, maxBytes: 1 << 28 };

function text(from: string, to: string, t: string): ChatMessage {
  return {
    id: crypto.getRandomValues(new Uint8Array(16)),
    from,
    to,
    kind: "text",
    text: t,
    time: new Date(),
  };
}

function image(from: string, to: string, bytes: number): ChatMessage {
  return {
    id: crypto.getRandomValues(new Uint8Array(16)),
    from,
    to,
    kind: "image",
    image: new Uint8Array(bytes),
    time: new Date(),
  };
}

/** The inbox on `kv`, closed and deleted after `fn`. */
async function withInboxOn(
  wrap: (real: Deno.Kv) => Deno.Kv,
  fn: (real: Deno.Kv, inbox: KvInboxStore) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "parley-inbox-" });
  const real = await Deno.openKv(join(dir, "test.kv"));
  const kv = wrap(real);
  const committer = new GroupCommitter(kv);
  const inbox = new KvInboxStore(kv, committer, 60_000);
  try {
    await fn(real, inbox);
  } finally {
    await committer.close();
    real.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function withInbox(
  fn: (
    kv: Deno.Kv,
    inbox: KvInboxStore,
    committer: GroupCommitter,
    failing: { on: boolean },
  ) => Promise<void>,
  deferMs?: number,
) {
  const dir = await Deno.makeTempDir({ prefix: "parley-inbox-" });
  const real = await Deno.openKv(join(dir, "test.kv"));
  const failing = { on: false };
  // Every commit fails while `failing.on` is set (a full disk, say).
  const kv = routedKv(
    real,
    () => true,
    (commit) => failing.on ? Promise.reject(new Error("disk full")) : commit(),
  );
  const committer = new GroupCommitter(kv);
  const inbox = new KvInboxStore(kv, committer, deferMs);
  try {
    await fn(real, inbox, committer, failing);
  } finally {
    failing.on = false;
    await committer.close();
    real.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a user's rows reach the store in seq order, deferred ones before a later image", () =>
  withInbox(async (kv, inbox) => {
    // Bob is online: the text waits as a deferred row (a minute, here); the 60 KB image has to
    // be written at once, and must not land in the store ahead of the text.
    const a = await inbox.enqueue(["bob"], text("alice", "bob", "hi"), limits, () => true);
    const b = await inbox.enqueue(["bob"], image("carol", "bob", 60_000), limits, () => true);
    await b.durable.promise();
    const rows = await Array.fromAsync(kv.list({ prefix: ["inbox", "bob"] }));
    assert.deepEqual(rows.map((e) => e.key[2]), [
      a.queued.find((i) => i.user === "bob")!.seq,
      b.queued.find((i) => i.user === "bob")!.seq,
    ]);
    // What a pump reads back is therefore complete up to the newest row it sees.
    const read = await inbox.read("bob", 0, 10);
    assert.deepEqual(read.map((it) => it.message.kind), ["text", "image"]);
  }, 60_000));

/** A message whose id and image come from the decoder, as a SEND's do: views of its slab. */
function decoded(to: string): ChatMessage {
  const m = image("alice", to, 8);
  m.id = decodeValue(encodeValue(m.id)) as Uint8Array;
  m.image = decodeValue(encodeValue(m.image!)) as Uint8Array;
  assert.ok(m.id.buffer.byteLength > m.id.length);
  return m;
}

Deno.test("stored rows hold the message's own bytes, not the decoder's shared slab", () =>
  withInbox(async (kv, inbox) => {
    // Bob's row waits (he is online), Carol's goes at once; both are committed in the end.
    const m = decoded("-");
    const { durable } = await inbox.enqueue(["bob", "carol"], m, limits, (u) => u === "bob");
    await inbox.settle();
    await durable.promise();
    for (const user of ["bob", "carol"]) {
      const row = await kv.get<{ message: ChatMessage }>(["inbox", user, 1]);
      const stored = row.value!.message;
      assert.deepEqual(stored.id, m.id, user);
      assert.equal(stored.id.buffer.byteLength, 16, `${user}: the id alone, not its slab`);
      assert.equal(stored.image!.buffer.byteLength, 8, user);
    }
  }, 60_000));

Deno.test("after a failed commit the queue counts match what the store holds", () =>
  withInbox(async (kv, inbox, _committer, failing) => {
    await inbox.append(["bob", "carol"], text("alice", "-", "old"), limits);
    const { queued, durable } = await inbox.enqueue(
      ["bob", "carol"],
      text("alice", "-", "new"),
      limits,
      () => true,
    );
    // Bob acknowledges his copy before it is written; then the commit of Carol's fails.
    await inbox.remove("bob", [queued.find((i) => i.user === "bob")!]);
    failing.on = true;
    await assert.rejects(durable.promise(), /disk full/);
    failing.on = false;
    // Carol's client had the copy already (it was pushed before it was durable) and acks it.
    await inbox.remove("carol", [queued.find((i) => i.user === "carol")!]);
    for (const user of ["bob", "carol"]) {
      const rows = await Array.fromAsync(kv.list({ prefix: ["inbox", user] }));
      assert.equal((await inbox.stats(user)).count, rows.length, user);
      assert.equal(rows.length, 1, user);
    }
  }));

Deno.test("once a recipient's counts are known, enqueue takes the seq without a promise", () =>
  withInbox(async (_kv, inbox) => {
    // The first message for Bob has to count his inbox in the store first.
    const first = inbox.enqueue(["bob"], text("alice", "bob", "one"), limits, () => true);
    assert.ok(first instanceof Promise);
    const a = await first;
    // Later ones answer at once, so a run of them keeps its order with nothing awaited.
    const b = inbox.enqueue(["bob"], text("alice", "bob", "two"), limits, () => true);
    assert.ok(!(b instanceof Promise));
    assert.equal(b.queued[0].seq, a.queued[0].seq + 1);
    await inbox.remove("bob", [...a.queued, ...b.queued]);
    await Promise.all([a.durable.promise(), b.durable.promise()]);
  }, 60_000));

Deno.test("a large image reaches 450 recipients: its rows and the blob marker fit the commits", () =>
  withInbox(async (kv, inbox) => {
    const users = Array.from({ length: 450 }, (_, i) => `u${i}`);
    const { queued } = await inbox.append(users, image("alice", "-", 60_000), limits);
    assert.equal(queued.length, 450);
    const refs = await Array.fromAsync(kv.list({ prefix: ["blob_ref"] }));
    assert.equal(refs.length, 450);
    assert.equal((await Array.fromAsync(kv.list({ prefix: ["blob_pending"] }))).length, 0);
  }));

Deno.test("when every row of a large image fails to commit, its blob goes and no count is left", () => {
  const failing = { on: false };
  const inboxRows = (key: Deno.KvKey) => key[0] === "inbox";
  return withInboxOn(
    (real) =>
      routedKv(
        real,
        inboxRows,
        (commit) => failing.on ? Promise.reject(new Error("disk full")) : commit(),
      ),
    async (kv, inbox) => {
      await inbox.stats("bob");
      await inbox.stats("carol");
      failing.on = true; // the blob's own commits go through; the rows naming it fail
      const { durable } = await inbox.enqueue(
        ["bob", "carol"],
        image("alice", "-", 200_000),
        limits,
      );
      await assert.rejects(durable.promise(), /disk full/);
      failing.on = false;
      for (const user of ["bob", "carol"]) assert.equal((await inbox.stats(user)).count, 0, user);
      for (const prefix of ["inbox", "blob", "blob_ref", "blob_pending"]) {
        assert.equal((await Array.fromAsync(kv.list({ prefix: [prefix] }))).length, 0, prefix);
      }
    },
  );
});

Deno.test("a failed write does not count out again a copy acknowledged before it", () => {
  // Carol's commit hangs until released, then fails. Meanwhile Bob acknowledges his copy of the
  // same message (his queue empties) and a new message for him arrives.
  const gate: { fail: (() => void) | null } = { fail: null };
  const carolsRows = (key: Deno.KvKey) => key[1] === "carol";
  return withInboxOn(
    (real) =>
      routedKv(
        real,
        carolsRows,
        (commit) =>
          gate.fail === null
            ? new Promise((_, reject) => gate.fail = () => reject(new Error("disk full")))
            : commit(),
      ),
    async (kv, inbox) => {
      await inbox.stats("bob");
      await inbox.stats("carol");
      const { queued, durable } = await inbox.enqueue(
        ["bob", "carol"],
        text("alice", "-", "hi"),
        limits,
        () => true,
      );
      const failed = durable.promise();
      await inbox.remove("bob", queued.filter((i) => i.user === "bob"));
      const flushed = inbox.settle(); // Carol's row goes to be committed, and hangs
      await until(() => gate.fail !== null, "Carol's commit to start");
      const next = inbox.append(["bob"], text("alice", "bob", "again"), limits);
      gate.fail!();
      await assert.rejects(failed, /disk full/);
      await next;
      await flushed;
      const rows = await Array.fromAsync(kv.list({ prefix: ["inbox", "bob"] }));
      assert.equal(rows.length, 1);
      assert.equal((await inbox.stats("bob")).count, 1, "Bob's count matches his one row");
      assert.equal((await inbox.stats("carol")).count, 0);
    },
  );
});

Deno.test("when deleting acknowledged rows fails, they still count and a later ACK removes them", () =>
  withInbox(async (kv, inbox, _committer, failing) => {
    const { queued } = await inbox.append(["bob"], text("alice", "bob", "one"), limits);
    failing.on = true;
    await assert.rejects(inbox.remove("bob", queued), /disk full/);
    failing.on = false;
    assert.equal((await inbox.stats("bob")).count, 1, "the row is still there, and counted");
    // Redelivered at the next login and acknowledged again: now it goes.
    await inbox.remove("bob", await inbox.read("bob", 0, 10));
    assert.equal((await inbox.stats("bob")).count, 0);
    assert.equal((await Array.fromAsync(kv.list({ prefix: ["inbox", "bob"] }))).length, 0);
  }));

Deno.test("a shared image to online members who acknowledge at once leaves nothing in the store", () =>
  withInbox(async (kv, inbox) => {
    const members = ["bob", "carol", "dan"];
    const m = image("alice", "-", 20_000);
    const { queued, durable } = await inbox.enqueue(members, m, limits, () => true);
    assert.equal((await Array.fromAsync(kv.list({ prefix: ["blob"] }))).length, 1, "written first");
    for (const item of queued) await inbox.remove(item.user, [item]);
    await durable.promise();
    assert.equal(inbox.absorbed, 3, "no row was written, and so none deleted");
    await inbox.settle();
    await inbox.removalsDone();
    for (const prefix of ["inbox", "blob", "blob_ref", "blob_pending"]) {
      assert.equal((await Array.fromAsync(kv.list({ prefix: [prefix] }))).length, 0, prefix);
    }
    assert.equal(inbox.storedBytes(), 0);
  }, 60_000));

Deno.test("a shared image: rows of members who acknowledged are never written; the others' stay", () =>
  withInbox(async (kv, inbox) => {
    const m = image("alice", "-", 20_000);
    const online = (u: string) => u !== "dan";
    const { queued, durable } = await inbox.enqueue(["bob", "carol", "dan"], m, limits, online);
    await inbox.remove("bob", queued.filter((i) => i.user === "bob"));
    await inbox.settle(); // Carol's deferred row goes now, unacknowledged
    await durable.promise();
    await inbox.removalsDone();
    // The user's place in each kind of key.
    const users = async (prefix: string, at: number) =>
      (await Array.fromAsync(kv.list({ prefix: [prefix] }))).map((e) => String(e.key[at]));
    assert.deepEqual(await users("inbox", 1), ["carol", "dan"]);
    assert.deepEqual((await users("blob_ref", 2)).sort(), ["carol", "dan"]);
    assert.equal((await users("blob", 1)).length, 1);
    assert.deepEqual(await users("blob_pending", 1), [], "the in-flight marker went");
    const [back] = await inbox.read("carol", 0, 1);
    assert.deepEqual(back.message.image, m.image);
  }, 60_000));

Deno.test("items are plain data: a copy of a queued item cancels its deferred row as well", () =>
  withInbox(async (kv, inbox) => {
    const first = await inbox.enqueue(["bob"], text("alice", "bob", "one"), limits, () => true);
    const second = await inbox.enqueue(["bob"], text("carol", "bob", "two"), limits, () => true);
    const copies = [...first.queued, ...second.queued].map((item) => structuredClone(item));
    assert.deepEqual(Object.keys(copies[0]).sort(), ["cost", "message", "seq", "size", "user"]);
    await inbox.remove("bob", copies);
    await Promise.all([first.durable.promise(), second.durable.promise()]);
    assert.equal(inbox.absorbed, 2, "both rows were cancelled before they left");
    await inbox.settle();
    assert.equal((await Array.fromAsync(kv.list({ prefix: ["inbox"] }))).length, 0);
    assert.deepEqual(await inbox.stats("bob"), { count: 0, bytes: 0 });
  }, 60_000));

Deno.test("copies of items whose image is shared remove their rows, refs and blob", () =>
  withInbox(async (kv, inbox) => {
    const m = image("alice", "-", 20_000);
    // Bob is online (his rows wait, cancellable); Carol is not (hers are committed at once).
    const online = (u: string) => u === "bob";
    const { queued, durable } = await inbox.enqueue(["bob", "carol"], m, limits, online);
    for (const item of queued) await inbox.remove(item.user, [structuredClone(item)]);
    await durable.promise();
    assert.equal(inbox.absorbed, 1, "Bob's rows were cancelled, ref and all");
    await inbox.settle();
    await inbox.removalsDone();
    for (const prefix of ["inbox", "blob", "blob_ref", "blob_pending"]) {
      assert.equal((await Array.fromAsync(kv.list({ prefix: [prefix] }))).length, 0, prefix);
    }
    assert.equal(inbox.storedBytes(), 0);
  }, 60_000));

Deno.test("a burst to an online user, acknowledged in pieces, cancels every row still waiting", () =>
  withInbox(async (kv, inbox) => {
    const queued: InboxItem[] = [];
    const send = async (from: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const e = await inbox.enqueue(["bob"], text(from, "bob", `m${i}`), limits, () => true);
        queued.push(...e.queued);
      }
    };
    await send("alice", 700);
    for (let i = 0; i < 350; i += 70) await inbox.remove("bob", queued.slice(i, i + 70));
    assert.equal(inbox.absorbed, 350);
    // The other 350 are committed (a reconnect reads them back); 50 more wait.
    await inbox.settle();
    await send("carol", 50);
    for (let i = 350; i < 750; i += 70) await inbox.remove("bob", queued.slice(i, i + 70));
    assert.equal(
      inbox.absorbed,
      400,
      "the committed rows were deleted, the waiting ones cancelled",
    );
    await inbox.settle();
    assert.equal((await Array.fromAsync(kv.list({ prefix: ["inbox"] }))).length, 0);
    assert.deepEqual(await inbox.stats("bob"), { count: 0, bytes: 0 });
  }, 60_000));

Deno.test("placed hears of an enqueue that waited for its blob before a later enqueue's seqs", () =>
  withInbox(async (_kv, inbox) => {
    const group = (from: string): ChatMessage => ({
      ...text(from, "", "y".repeat(1200)), // shared by two recipients: a blob is written first
      to: undefined,
      group: { id: 1, name: "g" },
    });
    const told: number[] = [];
    const resolved: number[] = [];
    const placed = (queued: readonly InboxItem[]) => {
      for (const item of queued) if (item.user === "bob") told.push(item.seq);
    };
    let later: Promise<void> | null = null;
    // While the first message's seqs are taken, a private message to bob is handled: the gap
    // between taking a seq and the caller's continuation, which a busy server fills.
    const acksSoon = () => {
      later ??= Promise.resolve().then(() => {
        const e = inbox.enqueue(["bob"], text("dave", "bob", "hi"), limits, () => true, placed);
        assert.ok(!(e instanceof Promise));
        for (const item of e.queued) resolved.push(item.seq);
      });
      return true;
    };
    const first = await inbox.enqueue(["bob", "carol"], group("alice"), limits, acksSoon, placed);
    for (const item of first.queued) if (item.user === "bob") resolved.push(item.seq);
    await later;
    assert.deepEqual(told, [1, 2], "placed follows seq order");
    // Handing items on when the promise settles, as the server once did, got them out of order:
    // the pump then skipped seq 1 live and its row was never deleted.
    assert.deepEqual(resolved, [2, 1]);
  }));

Deno.test("a removal whose lookup of a copy's blob fails counts the message in again", () =>
  withInboxOn(
    (real) => {
      // Reads by key fail while `failing.get` is set (the removal of a copy looks its row up).
      return new Proxy(real, {
        get(target, prop) {
          if (prop === "get" && failing.get) return () => Promise.reject(new Error("read failed"));
          const v = Reflect.get(target, prop);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    },
    async (_real, inbox) => {
      await inbox.load();
      // Long enough that its content might live in a blob: a copy's row is looked up for it.
      const e = await inbox.enqueue(["bob"], text("alice", "bob", "x".repeat(400)), limits);
      await e.durable.promise();
      failing.get = true;
      await assert.rejects(inbox.remove("bob", [{ ...e.queued[0] }]), /read failed/);
      failing.get = false;
      assert.equal((await inbox.stats("bob")).count, 1, "still stored, so still counted");
      const again = await inbox.read("bob", 0, 10);
      await inbox.remove("bob", again);
      assert.deepEqual(await inbox.stats("bob"), { count: 0, bytes: 0 });
      assert.equal((await inbox.read("bob", 0, 10)).length, 0, "its row is gone");
    },
  ));

const failing = { get: false };

Deno.test("rows whose removal failed are removed by a later ACK of a redelivered copy, even after later seqs went", () =>
  withInbox(async (real, inbox, _committer, failing) => {
    for (const t of ["one", "two", "three"]) {
      await inbox.append(["bob"], text("alice", "bob", t), limits);
    }
    const session = await inbox.read("bob", 0, 10);
    // The session acknowledges 2 (its removal fails), then 3 (which goes).
    failing.on = true;
    await assert.rejects(inbox.remove("bob", session.slice(0, 2)), /disk full/);
    failing.on = false;
    await inbox.remove("bob", session.slice(2));
    assert.equal((await inbox.stats("bob")).count, 2, "one and two are still stored, and count");
    // The next session gets one and two again and acknowledges them: now they go.
    const next = await inbox.read("bob", 0, 10);
    assert.deepEqual(next.map((i) => i.message.text), ["one", "two"]);
    await inbox.remove("bob", next);
    assert.equal((await inbox.stats("bob")).count, 0);
    assert.equal((await Array.fromAsync(real.list({ prefix: ["inbox", "bob"] }))).length, 0);
    // A copy acknowledged twice is still counted out once.
    await inbox.remove("bob", next);
    assert.equal((await inbox.stats("bob")).count, 0);
  }));

Deno.test("a message acknowledged while its row's commit runs, whose commit and delete both fail, counts for nothing", () => {
  // The first commit is held until `go` is called, then fails; so does the next one.
  const go = Promise.withResolvers<void>();
  let commits = 0;
  return withInboxOn(
    (real) =>
      routedKv(real, () => true, async (commit) => {
        const n = ++commits;
        if (n === 1) await go.promise;
        if (n <= 2) throw new Error("disk full");
        return commit();
      }),
    async (real, inbox) => {
      // Bob is online: his row is deferred; settle() sends it into a commit, which is held.
      const { queued, durable } = await inbox.enqueue(
        ["bob"],
        text("alice", "bob", "one"),
        limits,
        () => true,
      );
      const failed = durable.promise().catch((e) => e);
      const settled = inbox.settle();
      while (commits === 0) await new Promise((r) => setTimeout(r, 1));
      // Bob's client acknowledges it meanwhile: too late to cancel the row, so a delete follows.
      const removed = inbox.remove("bob", queued).catch((e) => e);
      go.resolve();
      await settled;
      assert.match(String(await failed), /disk full/, "the sender gets an error and retries");
      assert.match(String(await removed), /disk full/);
      assert.equal((await Array.fromAsync(real.list({ prefix: ["inbox", "bob"] }))).length, 0);
      const nothing = { count: 0, bytes: 0 };
      assert.deepEqual(await inbox.stats("bob"), nothing, "nothing stored, none counted");
      assert.equal(inbox.storedBytes("alice"), 0);
    },
  );
});
