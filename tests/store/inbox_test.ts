/**
 * The inbox with deferred rows on a real KV file: seq order in the store, and counts after a
 * failed commit.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { GroupCommitter } from "../../src/store/committer.ts";
import { KvInboxStore } from "../../src/store/inbox.ts";
import type { ChatMessage } from "../../src/store/types.ts";

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

/** A KV whose commits fail while `failing.on` is set (a full disk, say). */
function flakyKv(real: Deno.Kv, failing: { on: boolean }): Deno.Kv {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => failing.on ? Promise.reject(new Error("disk full")) : commit();
          return op;
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
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
  const kv = flakyKv(real, failing);
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
