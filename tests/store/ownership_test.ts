/**
 * What reaches the store owns its bytes: a message id or image that is a view of a larger buffer
 * (the server's decode slab, a client's pool) is copied at the store's door, so that no row
 * carries the rest of that buffer. Checked by reading the KV file back: a stored view comes back
 * as a view of the whole buffer it was cut from.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import { assertOwned, isOwned, storable } from "../../src/store/storable.ts";
import type { ChatMessage } from "../../src/store/types.ts";
import { befriend } from "../helpers/friends.ts";
import { TestServer } from "../helpers/server.ts";

/** A pool as the decode slab or a client's id pool makes: other values' bytes around each view. */
function pool(): Uint8Array {
  return new Uint8Array(4096).fill(0xee);
}

/** Every Uint8Array in a stored value, with where it was found. */
function bytesIn(value: unknown, at: string, out: [string, Uint8Array][] = []) {
  if (value instanceof Uint8Array) out.push([at, value]);
  else if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    for (const [k, v] of Object.entries(value)) bytesIn(v, `${at}.${k}`, out);
  }
  return out;
}

/** Every byte value stored in the KV file at `dataDir`, read back from the file. */
async function storedBytes(dataDir: string): Promise<[string, Uint8Array][]> {
  const kv = await Deno.openKv(join(dataDir, KV_FILE));
  try {
    const out: [string, Uint8Array][] = [];
    for await (const e of kv.list({ prefix: [] })) bytesIn(e.value, JSON.stringify(e.key), out);
    return out;
  } finally {
    kv.close();
  }
}

Deno.test("storable() copies an id or image that is a view of a pool; assertOwned() refuses a view", () => {
  const p = pool();
  const m: ChatMessage = {
    id: p.subarray(16, 32),
    time: new Date(0),
    from: "alice",
    to: "bob",
    kind: "image",
    image: p.subarray(100, 600),
  };
  const s = storable(m);
  assert.ok(isOwned(s.id) && isOwned(s.image!));
  assert.deepEqual(s.id, m.id);
  assert.deepEqual(s.image, m.image);
  const owned = { ...m, id: m.id.slice(), image: m.image!.slice() };
  assert.equal(storable(owned), owned, "a message that owns its bytes is not copied");
  assert.throws(
    () => assertOwned(p.subarray(0, 16), "An id"),
    /^Error: An id is a view of 16 bytes into a buffer of 4096; it must be copied before it is stored$/,
  );
  assertOwned(new Uint8Array(16), "An id");
  assertOwned(new Uint8Array(0), "An empty value");
});

Deno.test("the world backlog and the inbox store no pool around a message's id or image", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-own-" });
  try {
    const store = await openKvStore(dir, { worldBacklog: 10 });
    const p = pool();
    const message = (i: number, image: boolean): ChatMessage => ({
      id: p.subarray(i * 16, i * 16 + 16).fill(i),
      time: new Date(0),
      from: "alice",
      kind: image ? "image" : "text",
      ...(image ? { image: p.subarray(2048, 2048 + 300).fill(7) } : { text: "hi" }),
    });
    await store.world.append({ ...message(1, false), world: true });
    await store.world.append({ ...message(2, true), world: true });
    const limits = { maxMessages: 10, maxBytes: 1 << 30 };
    await store.inbox.append(["bob"], { ...message(3, false), to: "bob" }, limits);
    await store.inbox.append(["bob"], { ...message(4, true), to: "bob" }, limits);
    await store.inbox.append(["bob", "carol"], { ...message(5, true), to: "bob" }, limits);
    await store.close();
    const stored = await storedBytes(dir);
    const ids = stored.filter(([at]) => at.endsWith(".id")).map(([, b]) => b[0]).sort();
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 5]); // two world entries, an inbox row per recipient
    for (const [at, b] of stored) {
      assert.ok(
        isOwned(b),
        `${at} was stored with ${b.buffer.byteLength - b.byteLength} more bytes`,
      );
      assert.ok(!b.includes(0xee), `${at} holds bytes of the pool around it`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("after real traffic (private, offline, group, world, image) every stored byte value owns its buffer", async () => {
  const t = await TestServer.start();
  let running = true;
  try {
    const p = pool();
    let next = 0;
    const id = () => p.subarray(next, next += 16).fill(next / 16);
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    const carol = await t.user("carol");
    await befriend(alice, "alice", bob, "bob");
    await befriend(alice, "alice", carol, "carol");
    const g = await alice.createGroup("trip", ["bob", "carol"]);
    carol.close();
    await carol.closed;
    await alice.sendText({ user: "bob" }, "hi bob", id());
    await alice.sendText({ user: "carol" }, "hi carol, offline", id());
    await alice.sendImage({ user: "carol" }, new Uint8Array(3000).fill(9), "a.png", id());
    await alice.sendText({ group: g.group_id }, "to the group", id());
    await alice.sendImage({ group: g.group_id }, new Uint8Array(200).fill(9), "b.png", id());
    await alice.sendText({ world: true }, "to the world", id());
    // The server's copies are rows now; read them back from its file once it has closed.
    await t.closeClients();
    await t.server.close();
    running = false;
    const stored = await storedBytes(t.config.dataDir);
    assert.ok(stored.some(([at]) => at.startsWith('["inbox"')), "some inbox rows were stored");
    assert.ok(stored.some(([at]) => at.startsWith('["world"')), "the world message was stored");
    for (const [at, b] of stored) {
      assert.ok(
        isOwned(b),
        `${at} was stored with ${b.buffer.byteLength - b.byteLength} more bytes`,
      );
    }
  } finally {
    if (running) await t.stop();
    else await Deno.remove(t.dir, { recursive: true });
  }
});
