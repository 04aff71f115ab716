/**
 * A message to many recipients stored once in the KV file, across restarts and the layout older
 * versions wrote. Senders' shares and the budgets, which any store keeps, are in the contract
 * (tests/store/contract/inbox.ts).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import type { ChatMessage, InboxLimits, Store } from "../../src/store/types.ts";

const limits: InboxLimits = { maxMessages: 20_000, maxBytes: 1 << 28 };
const users = (n: number) => Array.from({ length: n }, (_, i) => `u${i}`);

function image(from: string, bytes: number, seed = 1): ChatMessage {
  return {
    id: crypto.getRandomValues(new Uint8Array(16)),
    time: new Date(),
    from,
    group: { id: 1, name: "big" },
    kind: "image",
    image: new Uint8Array(bytes).fill(seed),
  };
}

function text(from: string, t: string): ChatMessage {
  return {
    id: crypto.getRandomValues(new Uint8Array(16)),
    time: new Date(),
    from,
    kind: "text",
    text: t,
  };
}

async function withDir(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-shared-" });
  try {
    await fn(join(dir, "data"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function withStore(path: string, fn: (store: Store) => Promise<void>): Promise<void> {
  const store = await openKvStore(path);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** Every key and the bytes of its value, read from the file after the store is closed. */
async function contents(path: string): Promise<Map<string, number>> {
  const kv = await Deno.openKv(join(path, KV_FILE));
  const out = new Map<string, number>();
  try {
    for await (const e of kv.list({ prefix: [] })) {
      const v = e.value;
      const size = v instanceof Uint8Array
        ? v.length
        : JSON.stringify(v, (_, x) => x instanceof Uint8Array ? "x".repeat(x.length) : x)?.length ??
          0;
      out.set(JSON.stringify(e.key), size);
    }
  } finally {
    kv.close();
  }
  return out;
}

const under = (m: Map<string, number>, prefix: string) =>
  [...m].filter(([k]) => k.startsWith(`["${prefix}"`));
const sum = (rows: [string, number][]) => rows.reduce((n, [, b]) => n + b, 0);

async function dirBytes(path: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(path)) {
    if (e.isFile) n += (await Deno.stat(join(path, e.name))).size;
  }
  return n;
}

Deno.test("a 48 KiB image to 500 members is stored once: the data dir grows by about the image, not 500 copies", () =>
  withDir(async (path) => {
    const members = users(500);
    let before = 0;
    await withStore(path, async ({ inbox }) => {
      await inbox.append(["warm"], text("x", "warm"), limits);
      before = await dirBytes(path);
      for (let i = 0; i < 10; i++) {
        const { queued } = await inbox.append(members, image("alice", 48 * 1024, i + 1), limits);
        assert.equal(queued.length, 500);
      }
    });
    const grown = (await dirBytes(path)) - before;
    // Ten inline copies per member were 240 MiB; stored once it is 0.5 MiB and the 5000 rows.
    assert.ok(grown < 8 * 1024 * 1024, `the data dir grew by ${grown} bytes`);
    const rows = await contents(path);
    assert.ok(sum(under(rows, "inbox")) < 5000 * 1024, "no row holds the image");
    assert.equal(sum(under(rows, "blob")), 10 * 48 * 1024, "each image once");
    await withStore(path, async ({ inbox }) => {
      const [item] = await inbox.read("u499", 0, 1);
      assert.deepEqual(item.message.image, new Uint8Array(48 * 1024).fill(1));
      // What the budgets count, as rebuilt at the start: the images once, a small row per copy.
      const stored = inbox.storedBytes("alice");
      assert.ok(stored >= 10 * 48 * 1024 && stored < 10 * (48 * 1024 + 500 * 200), `${stored}`);
      assert.equal(inbox.storedBytes(), stored + inbox.storedBytes("x"));
    });
  }));

Deno.test("a shared blob stays until the last recipient acknowledges, then goes with its refs and markers", () =>
  withDir(async (path) => {
    const members = users(3);
    const message = text("alice", "long ".repeat(1000));
    message.group = { id: 1, name: "g" };
    await withStore(path, async ({ inbox }) => {
      await inbox.append(members, message, limits);
      for (const user of members.slice(0, 2)) {
        const items = await inbox.read(user, 0, 10);
        assert.equal(items[0].message.text, message.text, "the text comes back from its blob");
        await inbox.remove(user, items);
      }
    });
    let rows = await contents(path);
    assert.equal(under(rows, "blob").length, 1, "the last recipient still needs it");
    assert.equal(under(rows, "blob_ref").length, 1);
    await withStore(path, async ({ inbox }) => {
      assert.equal(inbox.storedBytes("alice") > 0, true, "counted again after a restart");
      await inbox.remove("u2", await inbox.read("u2", 0, 10));
      assert.equal(inbox.storedBytes("alice"), 0);
      assert.equal(inbox.storedBytes(), 0);
    });
    rows = await contents(path);
    for (const prefix of ["inbox", "blob", "blob_ref", "blob_pending"]) {
      assert.deepEqual(under(rows, prefix), [], prefix);
    }
  }));

Deno.test("a blob whose last ref went just before a crash is deleted at the next start", () =>
  withDir(async (path) => {
    await Deno.mkdir(path, { recursive: true });
    // What a crash after the ACK's commit (ref gone, marker set) and before the check leaves.
    const kv = await Deno.openKv(join(path, KV_FILE));
    await kv.set(["blob", "gone", 0], new Uint8Array(10));
    await kv.set(["blob_pending", "gone", "bob", 3], new Date());
    // Another blob with a marker but still a ref (its other recipient has not acknowledged).
    await kv.set(["blob", "kept", 0], new Uint8Array(10));
    await kv.set(["blob_pending", "kept", "bob", 4], new Date());
    await kv.set(["blob_ref", "kept", "carol", 9], true);
    kv.close();
    await withStore(path, async () => {});
    const rows = await contents(path);
    assert.deepEqual(under(rows, "blob").map(([k]) => k), ['["blob","kept",0]']);
    assert.deepEqual(under(rows, "blob_pending"), []);
  }));

Deno.test("rows in the layout older versions wrote (inline copies, no cost) are read, counted and removed", () =>
  withDir(async (path) => {
    await Deno.mkdir(path, { recursive: true });
    const kv = await Deno.openKv(join(path, KV_FILE));
    const small = image("alice", 40_000);
    const big = image("carol", 100_000, 2);
    // An inline image in each recipient's row, as before content was shared...
    for (const user of ["bob", "dan"]) {
      await kv.set(["inbox", user, 1], { message: small, size: 64 + 40_000 });
    }
    // ...and a chunked image with a ref per row and no `cost`.
    await kv.set(["blob", "old", 0], big.image!.slice(0, 61_440));
    await kv.set(["blob", "old", 1], big.image!.slice(61_440));
    for (const user of ["bob", "dan"]) {
      await kv.set(["inbox", user, 2], {
        message: { ...big, image: undefined },
        blob: { id: "old", chunks: 2, size: 100_000 },
        size: 64 + 100_000,
      });
      await kv.set(["blob_ref", "old", user, 2], true);
    }
    kv.close();
    await withStore(path, async ({ inbox }) => {
      assert.deepEqual(await inbox.stats("bob"), { count: 2, bytes: 64 + 40_000 + 64 + 100_000 });
      assert.equal(inbox.storedBytes(), 2 * (64 + 40_000 + 64 + 100_000));
      for (const user of ["bob", "dan"]) {
        const items = await inbox.read(user, 0, 10);
        assert.deepEqual(items.map((i) => i.message.image?.length), [40_000, 100_000]);
        assert.deepEqual(items[1].message.image, big.image);
        await inbox.remove(user, items);
      }
      assert.equal(inbox.storedBytes(), 0);
      // New messages go on from the old seqs.
      const { queued } = await inbox.append(["bob"], text("alice", "new"), limits);
      assert.equal(queued[0].seq, 3);
      await inbox.remove("bob", queued);
    });
    const rows = await contents(path);
    for (const prefix of ["inbox", "blob", "blob_ref", "blob_pending"]) {
      assert.deepEqual(under(rows, prefix), [], prefix);
    }
  }));
