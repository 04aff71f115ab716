/**
 * A failed removal followed by later ACKs on the same session, on a real KV file. Found by the
 * delivery simulation (tests/sim/delivery_sim.ts, seed 1 at 1000 steps): the later ACK moved the
 * removed-through mark past the rows whose removal failed, so every redelivered copy of them was
 * taken for one counted out already; they stayed stored and counted until the next start, and
 * came back at every login.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { GroupCommitter } from "../../src/store/committer.ts";
import { KvInboxStore } from "../../src/store/inbox.ts";
import type { ChatMessage } from "../../src/store/types.ts";
import { routedKv } from "../helpers/kv.ts";

const limits = { maxMessages: 100, maxBytes: 1 << 20 };

function text(t: string): ChatMessage {
  const id = crypto.getRandomValues(new Uint8Array(16));
  return { id, from: "alice", to: "bob", kind: "text", text: t, time: new Date() };
}

Deno.test("rows whose removal failed are removed by a later ACK of a redelivered copy, even after later seqs went", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-inbox-" });
  const real = await Deno.openKv(join(dir, "test.kv"));
  const failing = { on: false };
  const kv = routedKv(
    real,
    () => true,
    (commit) => failing.on ? Promise.reject(new Error("disk full")) : commit(),
  );
  const committer = new GroupCommitter(kv);
  const inbox = new KvInboxStore(kv, committer);
  try {
    for (const t of ["one", "two", "three"]) await inbox.append(["bob"], text(t), limits);
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
  } finally {
    await committer.close();
    real.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a message acknowledged while its row's commit runs, whose commit and delete both fail, counts for nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-inbox-" });
  const real = await Deno.openKv(join(dir, "test.kv"));
  // The first commit is held until `go` is called, then fails; so does the next one.
  const go = Promise.withResolvers<void>();
  let commits = 0;
  const kv = routedKv(real, () => true, async (commit) => {
    const n = ++commits;
    if (n === 1) await go.promise;
    if (n <= 2) throw new Error("disk full");
    return commit();
  });
  const committer = new GroupCommitter(kv);
  const inbox = new KvInboxStore(kv, committer);
  try {
    // Bob is online: his row is deferred; settle() sends it into a commit, which is held.
    const { queued, durable } = await inbox.enqueue(["bob"], text("one"), limits, () => true);
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
    assert.deepEqual(
      await inbox.stats("bob"),
      { count: 0, bytes: 0 },
      "nothing stored, none counted",
    );
    assert.equal(inbox.storedBytes("alice"), 0);
  } finally {
    await committer.close();
    real.close();
    await Deno.remove(dir, { recursive: true });
  }
});
