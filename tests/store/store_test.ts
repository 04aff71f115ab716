/**
 * What is particular to the KV store, on a real KV file in a temp dir: what its rows hold, image
 * chunks, the sweep at start, closing. What any store must do is in the contract
 * (tests/store/contract/, run on KV by kv_contract_test.ts).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeValue, encodeValue } from "../../src/protocol/value.ts";
import { KV_FILE, openKvStore } from "../../src/store/kv_store.ts";
import type { Store } from "../../src/store/types.ts";

async function withStore(fn: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-store-" });
  const store = await openKvStore(join(dir, "data"));
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("TokenStore keeps only hashes: the raw token is in no key and no value", () =>
  withStore(async ({ tokens }, dir) => {
    const a = await tokens.issue("xia", 60_000, 10);
    const kv = await Deno.openKv(join(dir, "data", "parley.kv"));
    for await (const e of kv.list({ prefix: [] })) {
      assert.ok(!JSON.stringify(e.key).includes(a.token.toHex()), "raw token found in a key");
      assert.ok(
        !(e.value instanceof Uint8Array && e.value.toHex() === a.token.toHex()),
        "raw token stored",
      );
    }
    kv.close();
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
