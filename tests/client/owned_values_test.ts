/**
 * The client library hands the application values that own their bytes: no id, file chunk or
 * other byte value is a view of the decoder's shared slab, which would carry other messages'
 * bytes wherever the application keeps, stores or posts it.
 */

import assert from "node:assert/strict";
import { owned } from "../../src/client/owned.ts";
import { MsgType } from "../../src/protocol/messages.ts";
import type { Value } from "../../src/protocol/value.ts";
import { isOwned } from "../../src/store/storable.ts";
import { withServer } from "../helpers/server.ts";

/** Every Uint8Array in `v`, with where it is. */
function bytesIn(v: unknown, at = "body", out: [string, Uint8Array][] = []) {
  if (v instanceof Uint8Array) out.push([at, v]);
  else if (typeof v === "object" && v !== null && !(v instanceof Date)) {
    for (const [k, x] of Object.entries(v)) bytesIn(x, `${at}.${k}`, out);
  }
  return out;
}

function assertAllOwned(v: unknown, what: string): number {
  const found = bytesIn(v);
  for (const [at, b] of found) {
    assert.ok(isOwned(b), `${what}: ${at} is a view into ${b.buffer.byteLength} bytes`);
  }
  return found.length;
}

Deno.test("owned() replaces views inside dicts and lists, in place, and leaves the rest", () => {
  const slab = new Uint8Array(64).fill(1);
  const date = new Date(5);
  const own = new Uint8Array(4);
  const body = { id: slab.subarray(0, 16), own, when: date, list: [slab.subarray(16, 20), "x"] };
  const out = owned(body as Value) as typeof body;
  assert.equal(out, body);
  assert.equal(out.own, own, "an owned value is kept as it is");
  assert.equal(out.when, date);
  assert.equal(assertAllOwned(out, "owned()"), 3);
  assert.deepEqual(out.id, new Uint8Array(16).fill(1));
  assert.ok(isOwned(owned(slab.subarray(1, 2)) as Uint8Array));
});

Deno.test("a client's PASS ids, lastWorldId, INITIALIZE backlog and small file chunks own their bytes", () =>
  withServer(async (t) => {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await alice.sendText({ world: true }, "hello world");
    await alice.sendText({ user: "bob" }, "hi bob");
    for (let i = 0; i < 2; i++) {
      const pass = await bob.nextEvent(MsgType.PASS);
      assert.equal(assertAllOwned(pass.body, "PASS"), 1);
    }
    assert.ok(bob.lastWorldId && isOwned(bob.lastWorldId), "lastWorldId");

    const carol = await t.connect();
    await carol.register("carol", "password-carol");
    await carol.login("carol", "password-carol");
    const init = await carol.nextEvent(MsgType.INITIALIZE);
    assert.ok(assertAllOwned(init.body, "INITIALIZE") >= 1, "the world backlog has an id");

    // A file of 10 bytes: one chunk small enough for the slab.
    const sending = alice.sendFile("bob", "tiny.bin", new Uint8Array(10).fill(3));
    const offer = (await bob.nextEvent(MsgType.FILE_INCOMING)).body as {
      transfer_id: number;
      size: number;
      sha256: Uint8Array;
    };
    const chunks: Uint8Array[] = [];
    await bob.acceptFile(offer, {
      write: (chunk: Uint8Array) => {
        chunks.push(chunk);
        return Promise.resolve();
      },
    });
    assert.equal((await sending).sha256Ok, true);
    assert.ok(chunks.length > 0 && chunks.every(isOwned), "file chunks");
  }));
